"""Keep a lease alive while slow work runs, so leases can be short.

A lease says "this worker is alive and has the row": a worker that dies stops renewing it,
and the row is taken over once it expires. Renewing it from a thread while the work runs
lets the lease be a few times the renewal interval (seconds) instead of longer than the
longest the work could ever take (minutes), which is how long a dead worker's row used
to wait.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connections

log = logging.getLogger(__name__)


@contextmanager
def lease_heartbeat(renew: Callable[[], bool], *, every: float, what: str) -> Iterator[None]:
    """Call `renew()` every `every` seconds in a thread while the block runs.

    `renew` returns False when the lease is no longer ours (taken over, finished); the
    thread then stops. It runs in its own database connection (Django's are per thread),
    opened only if a renewal is due, and closed when the thread ends.
    """
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(every):
                try:
                    if not renew():
                        return
                except Exception as exc:  # the next beat may work; the lease is the backstop
                    log.warning("heartbeat for %s failed: %s", what, exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=beat, name=f"heartbeat {what}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=max(every, 1))
