"""Human drills: people outside the inner circle exercise a path by hand, step by step."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from breakglass.access.lifecycle import grant_revoke
from breakglass.access.models import BackupPath
from breakglass.access.selectors import drill_credential_held
from breakglass.audit.services import audit_record
from breakglass.outbox.services import email_enqueue
from drills import engine
from drills.errors import DrillBlocked, DrillError, drill_action_require
from drills.models import (
    Drill,
    DrillParticipant,
    DrillRun,
    DrillStep,
)
from drills.selectors import (
    drill_blocked_reason,
    drill_coordinate_allowed,
    participants_pick,
)
from drills.steps import StepContext

log = logging.getLogger(__name__)


@transaction.atomic
def human_run_create(
    *, drill: Drill, path: BackupPath, participants: list | None = None, actor=None
) -> DrillRun:
    """A human drill of one path: invite named people or pick N eligible responders."""
    drill_action_require(drill_coordinate_allowed(user=actor), "drill coordinators can do this")
    blocked = drill_blocked_reason(drill=drill)
    if blocked:
        raise DrillBlocked(blocked)
    now = timezone.now()
    people = list(participants or drill.participants.all())
    if not people and drill.participant_count:
        people = participants_pick(path=path, count=drill.participant_count, now=now)
    if not people:
        raise DrillError(f"No eligible participants for a human drill of {path}")
    run = DrillRun.objects.create(
        drill=drill,
        path=path,
        kind=Drill.Kind.HUMAN,
        trigger=DrillRun.Trigger.SCHEDULE if actor is None else DrillRun.Trigger.MANUAL,
        target_seconds=drill.target_seconds,
        required_steps=drill.steps_required(),
        created_at=now,
        scheduled_for=now + timedelta(minutes=drill.announce_minutes),
    )
    engine.steps_create(run)
    owners = {u.pk for u in path.service.owning_team.members.all()}
    link = f"{settings.BREAKGLASS_BASE_URL}/drills/runs/{run.pk}/participate/"
    for person in people:
        DrillParticipant.objects.create(
            run=run, user=person, outside_owning_team=person.pk not in owners, invited_at=now
        )
        if person.email:
            email_enqueue(
                to=person.email,
                key=f"drill-invite:{run.pk}:{person.pk}",
                source=f"drills.run:{run.pk}",
                subject=f"[DRILL] You are invited to drill {path} "
                f"at {run.scheduled_for:%Y-%m-%d %H:%M} UTC",
                body=(
                    "This is a DRILL, not an incident.\n\n"
                    f"At {run.scheduled_for:%Y-%m-%d %H:%M} UTC, open the link below and "
                    f"get emergency access to {path.service.name} through the backup "
                    f"path '{path.name}' exactly as you would in an outage. The "
                    "credential you receive is flagged as a drill credential, lives a few "
                    "minutes and is revoked afterwards. We measure the time from "
                    "'Start' to a verified credential.\n\n"
                    f"{link}\n"
                ),
            )
    audit_record(
        action="drill.run_created",
        actor=actor,
        obj=run,
        data={"path": path.slug, "kind": "human", "participants": len(people)},
    )
    return run


def _participant_for(run: DrillRun, user) -> DrillParticipant:
    participant = run.participants.filter(user=user).first()
    if participant is None:
        raise DrillError("You are not a participant in this drill")
    if run.is_finished:
        raise DrillError("This drill has finished")
    return participant


@transaction.atomic
def participant_start(*, run: DrillRun, user) -> DrillParticipant:
    blocked = drill_blocked_reason()
    if blocked:
        raise DrillBlocked(blocked)
    participant = _participant_for(run, user)
    if participant.started_at is None:
        participant.started_at = timezone.now()
        participant.state = DrillParticipant.State.STARTED
        participant.save(update_fields=["started_at", "state"])
        DrillRun.objects.filter(pk=run.pk, state=DrillRun.State.PENDING).update(
            state=DrillRun.State.RUNNING, started_at=participant.started_at
        )
    return participant


def participant_obtain_credential(*, run: DrillRun, user) -> tuple[DrillParticipant, str]:
    """Issue the participant's drill credential through the real grant code and verify it
    offline against the published bundle, recording their time to access.

    One credential per participant per run: the participant's row is locked first, so a
    second request (or four at once) waits and is then refused; the grant table's
    constraint backs this up. A failed verification is the drill's finding, not a reason
    to mint another approval-free credential: the unused one is revoked at once."""
    failure = ""
    with transaction.atomic():
        participant = _participant_for(run, user)
        participant = DrillParticipant.objects.select_for_update().get(pk=participant.pk)
        if participant.started_at is None:
            raise DrillError("Press Start first: the clock starts there")
        if participant.grant_id or drill_credential_held(drill_ref=run.drill_ref, user=user):
            raise DrillError(
                "You already received this drill's credential: one per participant per run."
            )
        blocked = drill_blocked_reason()
        if blocked:
            raise DrillBlocked(blocked)
        ctx = StepContext(run=run, path=run.path, sync=True, delivers_notify=False)
        ctx.run.participant = user
        for name in ("issue", "verify"):
            state, _, reason = engine.step_attempt(name, ctx)
            if state != DrillStep.State.PASSED:
                failure = reason
                break
        if ctx.grant is not None:
            participant.grant_id, participant.grant_jti = ctx.grant.pk, ctx.grant.jti
        if failure:
            participant.failure_reason = failure
            participant.save(update_fields=["failure_reason", "grant_id", "grant_jti"])
            if ctx.grant is not None:  # issued but never shown: it must not stay valid
                grant_revoke(grant=ctx.grant, actor=None, reason="drill verification failed")
        else:
            now = timezone.now()
            participant.state = DrillParticipant.State.VERIFIED
            participant.verified_at = now
            participant.time_to_access_ms = int(
                (now - participant.started_at).total_seconds() * 1000
            )
            participant.failure_reason = ""
            participant.save()
            audit_record(
                action="drill.participant_verified",
                actor=user,
                obj=run,
                data={"tta_ms": participant.time_to_access_ms, "jti": ctx.grant.jti},
            )
    if failure:
        raise DrillError(failure)
    return participant, ctx.credential


@transaction.atomic
def participant_mark(*, participant: DrillParticipant, state: str, notes: str, actor) -> None:
    drill_action_require(
        drill_coordinate_allowed(user=actor), "drill coordinators can facilitate drills"
    )
    if state not in (DrillParticipant.State.NO_SHOW, DrillParticipant.State.FAILED, ""):
        raise DrillError("A facilitator can mark a participant as no-show or failed")
    if state:
        participant.state = state
    participant.notes = notes
    participant.save(update_fields=["state", "notes"])
    audit_record(
        action="drill.participant_marked", actor=actor, obj=participant.run, data={"state": state}
    )


@transaction.atomic
def step_mark(*, step: DrillStep, state: str, reason: str, actor) -> None:
    drill_action_require(
        drill_coordinate_allowed(user=actor), "drill coordinators can facilitate drills"
    )
    if state not in (DrillStep.State.PASSED, DrillStep.State.FAILED, DrillStep.State.SKIPPED):
        raise DrillError("Mark a step passed, failed or skipped")
    if state == DrillStep.State.FAILED and not reason.strip():
        raise DrillError("Say why the step failed")
    now = timezone.now()
    step.state, step.reason, step.marked_by = state, reason.strip(), actor
    step.started_at = step.started_at or now
    step.finished_at = now
    step.save()
    audit_record(action="drill.step_marked", actor=actor, obj=step.run, data={"step": step.name})


@transaction.atomic
def human_run_finish(*, run: DrillRun, actor, notes: str = "") -> DrillRun:
    """Close a human drill: anyone who never got a credential is a no-show (or failed if
    they started); the run passes if someone verified within the target and no step failed."""
    drill_action_require(
        drill_coordinate_allowed(user=actor), "drill coordinators can facilitate drills"
    )
    if run.is_finished:
        raise DrillError("This drill has already finished")
    run.participants.filter(state=DrillParticipant.State.INVITED).update(
        state=DrillParticipant.State.NO_SHOW
    )
    run.participants.filter(state=DrillParticipant.State.STARTED).update(
        state=DrillParticipant.State.FAILED
    )
    times = sorted(
        run.participants.filter(state=DrillParticipant.State.VERIFIED).values_list(
            "time_to_access_ms", flat=True
        )
    )
    failed_steps = [s for s in run.steps.all() if s.state == DrillStep.State.FAILED]
    reasons = [f"{s.title}: {s.reason}" for s in failed_steps]
    if not times:
        reasons.insert(0, "Nobody reached a verified credential.")
    elif times[0] > run.target_seconds * 1000:
        reasons.append(
            f"The fastest participant took {times[0] // 1000}s, over the target of "
            f"{run.target_seconds}s."
        )
    run.steps.filter(state=DrillStep.State.PENDING).update(
        state=DrillStep.State.SKIPPED, reason="Not marked by the facilitator."
    )
    run.state = DrillRun.State.FAILED if reasons else DrillRun.State.PASSED
    run.failure_reason = "; ".join(reasons)
    run.time_to_access_ms = times[len(times) // 2] if times else None
    run.finished_at = timezone.now()
    run.started_at = run.started_at or run.finished_at
    if notes:
        run.facilitator_notes = notes
    run.save()
    audit_record(
        action="drill.run_finished",
        actor=actor,
        obj=run,
        data={"state": run.state, "path": run.path.slug, "reason": run.failure_reason[:500]},
    )
    engine.run_credentials_revoke(run, reason="finished")
    return run


@transaction.atomic
def human_run_abandon(*, run: DrillRun) -> bool:
    """Close a human run nobody finished (the reaper calls this): aborted, with every
    credential it issued revoked. Returns False if it was finished meanwhile."""
    locked = DrillRun.objects.select_for_update().get(pk=run.pk)
    if locked.is_finished:
        return False
    now = timezone.now()
    locked.participants.filter(
        state__in=[DrillParticipant.State.INVITED, DrillParticipant.State.STARTED]
    ).update(state=DrillParticipant.State.NO_SHOW)
    locked.state = DrillRun.State.ABORTED
    locked.failure_reason = (
        f"Abandoned: nobody finished the run within {settings.DRILLS_HUMAN_RUN_ABANDON_HOURS} "
        "hours of its start."
    )
    locked.finished_at = now
    locked.save(update_fields=["state", "failure_reason", "finished_at"])
    audit_record(
        action="drill.run_finished",
        obj=locked,
        data={"state": locked.state, "path": locked.path.slug, "reason": locked.failure_reason},
    )
    engine.run_credentials_revoke(locked, reason="abandoned")
    return True
