"""The error every refused access operation raises, and the helper that audits a refusal first."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from breakglass.audit.services import audit_record
from breakglass.project.errors import DomainError


class GrantError(DomainError):
    """A refused access operation. `str()` is the human message; `code` is for the API."""


def grant_refuse(
    *,
    message: str,
    code: str,
    status: int = 400,
    action: str | None = None,
    actor: User | None = None,
    obj=None,
    data: dict | None = None,
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
    raise GrantError(message, code=code, status=status)
