"""Delivery handlers by outbox kind. Apps register theirs at import time of their
`outbox_handlers` module (loaded by OutboxConfig.ready via autodiscovery).

A handler receives the OutboxMessage and either returns (delivered) or raises
(`PermanentFailure` to stop retrying, anything else to retry with back-off).
"""

from __future__ import annotations

from collections.abc import Callable

_HANDLERS: dict[str, Callable] = {}


class PermanentFailure(Exception):
    """Retrying cannot help (invalid address, receiver disabled): mark the row dead."""


def register(kind: str) -> Callable[[Callable], Callable]:
    def decorator(func: Callable) -> Callable:
        _HANDLERS[kind] = func
        return func

    return decorator


def handler_for(kind: str) -> Callable:
    try:
        return _HANDLERS[kind]
    except KeyError:
        raise PermanentFailure(f"no handler registered for outbox kind {kind!r}") from None
