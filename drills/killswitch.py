"""The kill switch and blackout windows: when drills must not run."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from breakglass.audit.services import audit_record
from drills.errors import DrillError, drill_action_require
from drills.models import (
    BlackoutWindow,
    Drill,
    DrillRun,
    KillSwitchEvent,
)
from drills.selectors import drill_coordinate_allowed, killswitch_engage_allowed

log = logging.getLogger(__name__)


@transaction.atomic
def killswitch_engage(*, actor, reason: str) -> KillSwitchEvent:
    """Stop running drills (at their next step) and block new ones."""
    drill_action_require(
        killswitch_engage_allowed(user=actor),
        "drill coordinators and incident commanders can engage the kill switch",
    )
    if not reason.strip():
        raise DrillError("Say why the kill switch is engaged")
    event = KillSwitchEvent.objects.create(engaged=True, reason=reason.strip(), actor=actor)
    aborted = drill_runs_abort_all(reason=f"Kill switch engaged by {actor}: {reason.strip()}")
    audit_record(
        action="drill.killswitch_engaged", actor=actor, obj=event, data={"aborted": aborted}
    )
    return event


@transaction.atomic
def killswitch_release(*, actor, reason: str = "") -> KillSwitchEvent:
    drill_action_require(
        drill_coordinate_allowed(user=actor), "drill coordinators can release the kill switch"
    )
    event = KillSwitchEvent.objects.create(
        engaged=False, reason=reason.strip() or "released", actor=actor
    )
    audit_record(action="drill.killswitch_released", actor=actor, obj=event)
    return event


def drill_runs_abort_all(*, reason: str) -> int:
    """Abort every pending or running automated run. Workers notice at their next step
    (their conditional writes stop matching) and revoke what they issued."""
    now = timezone.now()
    with transaction.atomic():
        runs = list(
            DrillRun.objects.select_for_update().filter(
                state__in=[DrillRun.State.PENDING, DrillRun.State.RUNNING]
            )
        )
        DrillRun.objects.filter(pk__in=[run.pk for run in runs]).update(
            state=DrillRun.State.ABORTED, failure_reason=reason, finished_at=now
        )
        # Human drills have no worker to clean up after them: revoke what they issued now.
        from drills.engine import run_credentials_revoke

        for run in runs:
            if run.kind == Drill.Kind.HUMAN:
                run_credentials_revoke(run, reason="aborted: kill switch")
    return len(runs)


@transaction.atomic
def blackout_create(
    *, starts_at: datetime, ends_at: datetime, reason: str, actor=None
) -> BlackoutWindow:
    drill_action_require(drill_coordinate_allowed(user=actor), "drill coordinators can do this")
    if ends_at <= starts_at:
        raise DrillError("A blackout window must end after it starts")
    if not reason.strip():
        raise DrillError("Say why drills are blacked out")
    window = BlackoutWindow.objects.create(
        starts_at=starts_at, ends_at=ends_at, reason=reason.strip(), created_by=actor
    )
    audit_record(
        action="drill.blackout_created",
        actor=actor,
        obj=window,
        data={"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()},
    )
    return window


# --- Creating and dispatching runs ----------------------------------------------------
