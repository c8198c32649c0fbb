"""Game days: many people drilling many paths at once, paced by a concurrency limit."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from breakglass.access.models import BackupPath
from breakglass.audit.services import audit_record
from breakglass.project.progress import progress_atomic
from drills import engine
from drills.errors import DrillBlocked, DrillError, drill_action_require
from drills.models import (
    STEP_NAMES,
    Drill,
    DrillRun,
    DrillStep,
    GameDay,
    step_names_for,
)
from drills.selectors import (
    drill_blocked_reason,
    drill_coordinate_allowed,
)

log = logging.getLogger(__name__)


@transaction.atomic
def gameday_start(
    *,
    name: str,
    participants: list,
    paths: list[BackupPath],
    actor=None,
    concurrency: int = 8,
    drill: Drill | None = None,
) -> GameDay:
    """Fan out one automated run per (participant, path), at most `concurrency` at a time."""
    drill_action_require(drill_coordinate_allowed(user=actor), "drill coordinators can do this")
    blocked = drill_blocked_reason(drill=drill)
    if blocked:
        raise DrillBlocked(blocked)
    if not participants or not paths:
        raise DrillError("A game day needs at least one participant and one path")
    if concurrency < 1:
        raise DrillError("Concurrency must be at least 1")
    now = timezone.now()
    game_day = GameDay.objects.create(
        name=name, drill=drill, concurrency=concurrency, created_by=actor
    )
    runs = DrillRun.objects.bulk_create(
        [
            DrillRun(
                path=path,
                drill=drill,
                kind=Drill.Kind.GAME_DAY,
                trigger=DrillRun.Trigger.GAME_DAY,
                game_day=game_day,
                participant=person,
                target_seconds=drill.target_seconds if drill else 300,
                required_steps=drill.steps_required() if drill else list(STEP_NAMES),
                created_at=now,
            )
            for person in participants
            for path in paths
        ]
    )
    DrillStep.objects.bulk_create(
        [
            DrillStep(run=run, name=step, order=i)
            for run in runs
            for i, step in enumerate(step_names_for(run.path), start=1)
        ]
    )
    audit_record(
        action="drill.gameday_started",
        actor=actor,
        obj=game_day,
        data={"runs": len(runs), "paths": len(paths), "participants": len(participants)},
    )
    transaction.on_commit(lambda: gameday_pump(game_day_id=game_day.pk))
    return game_day


def gameday_pump(*, game_day_id: int) -> int:
    """Queue as many waiting runs as the game day's concurrency allows, in whole batches
    of DRILLS_GAMEDAY_BATCH (one task each, whose runs share one published bundle).

    Only whole batches while others are in flight: a pump that ran while a batch was
    finishing would otherwise queue the few slots freed so far as a small batch, the rest
    later as another, and batches would only ever shrink.

    Progress only: `queued_at` a database crash took away makes the reaper queue the run
    again (a second task for a run is harmless: the claim takes it once)."""
    with progress_atomic():
        game_day = GameDay.objects.select_for_update().get(pk=game_day_id)
        in_flight = game_day.runs.filter(
            queued_at__isnull=False, state__in=[DrillRun.State.PENDING, DrillRun.State.RUNNING]
        ).count()
        batch = min(settings.DRILLS_GAMEDAY_BATCH, game_day.concurrency)
        slots = game_day.concurrency - in_flight
        slots -= slots % batch
        ids = []
        if slots > 0:
            ids = list(
                game_day.runs.filter(state=DrillRun.State.PENDING, queued_at__isnull=True)
                .order_by("id")
                .values_list("pk", flat=True)[:slots]
            )
            DrillRun.objects.filter(pk__in=ids).update(queued_at=timezone.now())
            transaction.on_commit(lambda: engine.runs_enqueue(ids, batch=batch))
        if not ids and in_flight == 0 and game_day.finished_at is None:
            if not game_day.runs.filter(state=DrillRun.State.PENDING).exists():
                game_day.finished_at = timezone.now()
                game_day.save(update_fields=["finished_at"])
    return len(ids)


# --- Human drills ---------------------------------------------------------------------------
