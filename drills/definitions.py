"""Drill definitions, their schedules and sign-off."""

from __future__ import annotations

import json
import logging

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from breakglass.access.models import BackupPath
from breakglass.audit.services import audit_record
from breakglass.project.periodic import crontab_for
from drills.errors import DrillError
from drills.models import (
    STEP_NAMES,
    Drill,
)

log = logging.getLogger(__name__)


def _crontab(cron: str):
    try:
        return crontab_for(cron)
    except ValueError as exc:
        raise DrillError(str(exc)) from None


@transaction.atomic
def drill_create(
    *,
    name: str,
    owner,
    kind: str = Drill.Kind.AUTOMATED,
    selection: str = Drill.Selection.PATHS,
    paths: list[BackupPath] | None = None,
    cron: str | None = None,
    target_seconds: int = 300,
    required_steps: list[str] | None = None,
    requires_signoff: bool = False,
    announce_minutes: int = 0,
    participants: list | None = None,
    participant_count: int = 0,
    slug: str | None = None,
    actor=None,
) -> Drill:
    """Define a drill; with `cron`, schedule it in django-celery-beat (editable in the admin)."""
    from django_celery_beat.models import PeriodicTask

    unknown = set(required_steps or []) - set(STEP_NAMES)
    if unknown:
        raise DrillError(f"Unknown steps {sorted(unknown)}; known: {', '.join(STEP_NAMES)}")
    if kind not in Drill.Kind.values:
        raise DrillError(f"Unknown kind {kind!r}")
    if selection == Drill.Selection.PATHS and not paths:
        raise DrillError("A drill with selection 'paths' needs at least one path")
    drill = Drill.objects.create(
        name=name,
        slug=slug or slugify(name),
        kind=kind,
        selection=selection,
        owner=owner,
        target_seconds=target_seconds,
        required_steps=list(required_steps or []),
        requires_signoff=requires_signoff,
        announce_minutes=announce_minutes,
        participant_count=participant_count,
    )
    drill.paths.set(paths or [])
    drill.participants.set(participants or [])
    if cron:
        drill.schedule = PeriodicTask.objects.create(
            name=f"drill: {drill.name}",
            task="drills.tasks.drill_scheduled_task",
            crontab=_crontab(cron),
            kwargs=json.dumps({"drill_id": drill.pk}),
            enabled=True,
        )
        drill.save(update_fields=["schedule"])
    audit_record(
        action="drill.created",
        actor=actor or owner,
        obj=drill,
        data={"name": drill.name, "kind": drill.kind, "cron": cron or ""},
    )
    return drill


@transaction.atomic
def drill_signoff(*, drill: Drill, user) -> Drill:
    if drill.owner_id != user.pk:
        raise DrillError(f"Only the drill's owner ({drill.owner}) can sign it off")
    drill.signed_off_by, drill.signed_off_at = user, timezone.now()
    drill.save(update_fields=["signed_off_by", "signed_off_at"])
    audit_record(action="drill.signed_off", actor=user, obj=drill)
    return drill


# --- Kill switch and blackout windows -------------------------------------------------
