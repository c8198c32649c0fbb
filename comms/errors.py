"""The error comms services raise; `str()` is the message for a person."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from breakglass.project.errors import DomainError


class CommsError(DomainError, ValidationError):
    """A refused comms operation. Also a Django `ValidationError`, so forms and the
    views' `except ValidationError` show it like any other invalid input."""

    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        ValidationError.__init__(self, message, code=code or type(self).code)
        DomainError.__init__(self, message, code=code, status=status)
