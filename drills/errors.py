"""Errors drill services raise; `str()` is the message for a person."""

from __future__ import annotations

import logging

from breakglass.project.errors import DomainError

log = logging.getLogger(__name__)


class DrillBlocked(DomainError):
    """A new run may not start now (kill switch, blackout, sign-off); str() says why."""

    code = "drill_blocked"
    status = 409


class DrillError(DomainError, ValueError):
    """Bad input or an action that does not fit the current state; str() says why."""

    code = "drill_refused"


class DrillNotAllowed(DrillError):
    """The person's roles do not allow this drill action."""

    code = "not_allowed"
    status = 403


def drill_action_require(allowed: bool, what: str) -> None:
    """Raise DrillNotAllowed unless `allowed` (an answer from drills.selectors)."""
    if not allowed:
        raise DrillNotAllowed(f"Only {what}.")
