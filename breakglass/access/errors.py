"""The error every refused access operation raises, and the helper that audits a refusal first."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction

from breakglass.audit.services import audit_record
from breakglass.project.errors import DomainError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request, and the form field it is about (None: the request
    as a whole), so a form can show every problem at once next to its field."""

    field: str | None
    message: str
    code: str


class GrantError(DomainError):
    """A refused access operation. `str()` is the human message; `code` is for the API.
    A request refused for several reasons at once lists them all in `problems` (the
    message and code are then the first one's, followed by the other messages)."""

    def __init__(self, message: str, *, problems: tuple[Problem, ...] = (), **kwargs):
        super().__init__(message, **kwargs)
        self.problems = problems


def grant_refuse(
    *,
    message: str,
    code: str,
    status: int = 400,
    action: str | None = None,
    actor: User | None = None,
    obj=None,
    data: dict | None = None,
    problems: tuple[Problem, ...] = (),
):
    """Record the refusal (when it is worth auditing) in its own transaction, then raise."""
    if action is not None:
        with transaction.atomic():
            audit_record(
                action=action,
                actor=actor,
                obj=obj,
                data={"code": code, "message": message, **(data or {})},
            )
    raise GrantError(message, code=code, status=status, problems=problems)
