"""Errors drill services raise; `str()` is the message for a person."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class DrillBlocked(Exception):
    """A new run may not start now (kill switch, blackout, sign-off); str() says why."""


class DrillError(ValueError):
    """Bad input or an action that does not fit the current state; str() says why."""
