"""Retry a whole transaction that failed for a transient reason, before a person sees it.

Transient means the same call can simply be made again: PostgreSQL chose this transaction
as a deadlock victim (40P01), refused it under serialization (40001), or the connection
was lost before COMMIT was sent. A connection lost *during* COMMIT is not retried: the
transaction may have committed, and running it again could act twice. That case raises
`DatabaseUnavailable` with a message saying so.

`retry_transient` wraps the services' entry points (the outermost call that opens the
transaction). Inside a transaction someone else opened it does nothing, because only the
owner of the transaction can run it again.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections import Counter

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)

# How many times each kind of failure was retried in this process (tests and bench read it).
retry_counts: Counter = Counter()

_DEADLOCK = "40P01"
_SERIALIZATION = "40001"
# Class 08 is "connection exception"; 57P01-03 are the server shutting down or restarting.
_CONNECTION_STATES = ("57P01", "57P02", "57P03")


class DatabaseUnavailable(Exception):
    """The database could not be reached, or stopped answering, for one operation.
    `str()` is one line a person can act on."""


def _sqlstate(exc: BaseException) -> str | None:
    cause = exc.__cause__ or exc.__context__
    for candidate in (exc, cause):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if state:
            return state
    return None


def transient_kind(exc: BaseException) -> str | None:
    """ "deadlock", "serialization", "connection", or None for a failure that is not transient."""
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return None
    state = _sqlstate(exc)
    if state == _DEADLOCK:
        return "deadlock"
    if state == _SERIALIZATION:
        return "serialization"
    if isinstance(exc, InterfaceError) or state is None or state.startswith("08"):
        return "connection"
    if state in _CONNECTION_STATES:
        return "connection"
    return None


def database_problem(exc: BaseException) -> str:
    """One line saying what is wrong with the database, without secrets or a traceback."""
    kind = transient_kind(exc)
    if kind == "deadlock":
        return "the database chose this operation as a deadlock victim; try again"
    if kind == "serialization":
        return "the operation conflicted with a concurrent one; try again"
    detail = str(exc.__cause__ or exc).strip().splitlines()
    return "the database is unreachable" + (f" ({detail[0]})" if detail else "")


def outage_problem(exc: BaseException) -> str | None:
    """One line naming what is unreachable (the database, the broker), or None when the
    exception is not an outage."""
    if isinstance(exc, DatabaseUnavailable):
        return str(exc)
    if isinstance(exc, (OperationalError, InterfaceError)) and transient_kind(exc):
        return database_problem(exc)
    try:
        from kombu.exceptions import OperationalError as BrokerError
    except ImportError:  # pragma: no cover - kombu comes with Celery
        return None
    if isinstance(exc, BrokerError):
        detail = str(exc).strip().splitlines()
        return "the broker is unreachable" + (f" ({detail[0]})" if detail else "")
    return None


def retry_transient(func):
    """Run `func` again (up to BREAKGLASS_TRANSIENT_ATTEMPTS in all) after a transient
    database failure, with a short randomised back-off so two deadlock victims do not
    collide again."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if connection.in_atomic_block:
            return func(*args, **kwargs)
        attempts = settings.BREAKGLASS_TRANSIENT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            committing = False
            try:
                return func(*args, **kwargs)
            except (OperationalError, InterfaceError) as exc:
                kind = transient_kind(exc)
                committing = getattr(exc, "breakglass_during_commit", False)
                if kind is None:
                    raise
                if kind == "connection":
                    # Drop the dead connection; the next query opens a new one.
                    connection.close()
                if kind == "connection" and committing:
                    raise DatabaseUnavailable(
                        "The database connection was lost while saving; check whether the "
                        "action took effect before repeating it."
                    ) from exc
                if attempt == attempts:
                    if kind == "connection":
                        raise DatabaseUnavailable(database_problem(exc)) from exc
                    raise
                retry_counts[kind] += 1
                log.warning(
                    "%s: %s on attempt %s of %s; retrying",
                    func.__qualname__,
                    kind,
                    attempt,
                    attempts,
                )
                time.sleep(random.uniform(0.01, 0.05) * 2**attempt)  # noqa: S311 - jitter only
        raise AssertionError("unreachable")  # pragma: no cover

    return wrapper


def mark_commit_failure(exc: DatabaseError) -> None:
    """Called by the commit hook (breakglass.audit.hooks) when COMMIT itself fails."""
    exc.breakglass_during_commit = True
