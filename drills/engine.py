"""The run engine: creating runs, claiming them with a lease, executing their steps, reaping.

Crash safety: a run is claimed with a conditional update (`pending` -> `running`) that
also sets a lease; the worker renews the lease at every step and every write it makes is
conditional on still holding the run (same `attempt`). A worker that dies leaves a run
whose lease expires; the next delivery of its task (Celery re-queues it because tasks are
`acks_late` with `reject_on_worker_lost`, and the periodic reaper re-sends it otherwise)
takes the run over and *resumes* it: steps that passed stay passed, the interrupted step
runs again. A credential issued by the lost attempt but not yet verified is revoked and a
fresh one issued, because credentials are never kept in memory across processes. After
`MAX_ATTEMPTS` lost attempts the run is marked failed with the step it kept dying in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Q
from django.utils import timezone

from breakglass.access.lifecycle import grant_revoke
from breakglass.access.models import BackupPath, Grant
from breakglass.audit.services import audit_record
from breakglass.keys.services import revocations_published_together
from breakglass.outbox.services import email_enqueue, publish_once
from breakglass.project.heartbeat import lease_heartbeat
from breakglass.project.progress import (
    progress_atomic,
    progress_execute,
    progress_only,
    progress_update,
    update_sql,
)
from comms.selectors import real_sev1_incidents
from drills import gameday, human
from drills.errors import DrillBlocked, DrillError, drill_action_require
from drills.models import (
    STEP_NAMES,
    STEP_TITLES,
    Drill,
    DrillRun,
    DrillStep,
    GameDay,
    step_names_for,
)
from drills.selectors import (
    SEV1_REASON,
    drill_blocked_reason,
    drill_coordinate_allowed,
    drill_target_paths,
    killswitch_state,
    real_sev1_is_open,
)
from drills.steps import StepContext, StepSkipped, reseal_check, reseal_revoke, step_run

log = logging.getLogger(__name__)


MAX_ATTEMPTS = 3
# A game-day or queued run whose task never arrived (a broker restarted empty) is re-sent
# after this long; a duplicate is harmless (the claim takes the run once).
REQUEUE_AFTER = timedelta(seconds=30)


def lease_seconds() -> int:
    """How long a worker may go silent before its run is taken over. A live worker renews
    the lease at every step and from a heartbeat every quarter lease while a step runs
    (`lease_heartbeat`), so it is never overtaken however long the step takes."""
    return settings.DRILLS_LEASE_SECONDS


# --- Definitions and schedules ---------------------------------------------------------


def runs_enqueue(run_ids: list[int], *, countdown: int | None = None, batch: int = 1) -> None:
    """Send run tasks, `batch` runs per task (drill_runs_execute); never raise (the reaper
    re-sends anything that did not go)."""
    from drills.tasks import drill_run_task, drill_runs_task  # drills.tasks imports this

    for start in range(0, len(run_ids), batch):
        chunk = list(run_ids[start : start + batch])
        try:
            # The short-timeout connection: a hung broker costs one bounded attempt.
            if len(chunk) == 1:
                publish_once(drill_run_task, args=chunk, countdown=countdown)
            else:
                publish_once(drill_runs_task, args=[chunk], countdown=countdown)
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:
            log.warning("drills: could not queue runs %s (%s); the reaper will", chunk, exc)
            return


def steps_create(run: DrillRun) -> None:
    DrillStep.objects.bulk_create(
        [
            DrillStep(run=run, name=name, order=i)
            for i, name in enumerate(step_names_for(run.path), start=1)
        ]
    )


def _owner_emails(path: BackupPath) -> list[str]:
    return sorted(
        {u.email for u in path.service.owning_team.members.filter(is_active=True) if u.email}
    )


def _announce(run: DrillRun, *, recipients: list[str]) -> None:
    when = run.scheduled_for or run.created_at
    for email in recipients:
        email_enqueue(
            to=email,
            key=f"drill-announce:{run.pk}:{email}",
            source=f"drills.run:{run.pk}",
            subject=f"[DRILL] {run.path} will be drilled at {when:%Y-%m-%d %H:%M} UTC",
            body=(
                f"This is an announcement, not an incident.\n\nA {run.get_kind_display()} "
                f"drill of the backup path {run.path} starts at {when:%Y-%m-%d %H:%M} UTC. "
                "It issues a short-lived drill credential, verifies it and revokes it.\n\n"
                f"Run: {settings.BREAKGLASS_BASE_URL}/drills/runs/{run.pk}/\n"
            ),
        )


@transaction.atomic
def drill_run_create(
    *,
    path: BackupPath,
    drill: Drill | None = None,
    trigger: str = DrillRun.Trigger.MANUAL,
    participant=None,
    game_day: GameDay | None = None,
    actor=None,
    enqueue: bool = True,
    now: datetime | None = None,
) -> DrillRun:
    """Create an automated run of one path (and queue it unless `enqueue=False`).

    Raises DrillBlocked while the kill switch is engaged, in a blackout window, or while
    the drill awaits its owner's sign-off.
    """
    drill_action_require(drill_coordinate_allowed(user=actor), "drill coordinators can do this")
    now = now or timezone.now()
    blocked = drill_blocked_reason(drill=drill, now=now)
    if blocked:
        raise DrillBlocked(blocked)
    announce = drill.announce_minutes if drill is not None else 0
    run = DrillRun.objects.create(
        drill=drill,
        path=path,
        kind=drill.kind if drill is not None else Drill.Kind.AUTOMATED,
        trigger=trigger,
        participant=participant,
        game_day=game_day,
        target_seconds=drill.target_seconds if drill is not None else 300,
        required_steps=drill.steps_required() if drill is not None else list(STEP_NAMES),
        created_at=now,
        scheduled_for=now + timedelta(minutes=announce) if announce else None,
        queued_at=now if enqueue else None,
    )
    steps_create(run)
    if announce:
        emails = set(_owner_emails(path))
        if drill.owner.email:
            emails.add(drill.owner.email)
        _announce(run, recipients=sorted(emails))
    audit_record(
        action="drill.run_created",
        actor=actor,
        obj=run,
        data={"path": path.slug, "trigger": trigger, "drill": drill.slug if drill else ""},
    )
    if enqueue:
        countdown = announce * 60 if announce else None
        transaction.on_commit(lambda: runs_enqueue([run.pk], countdown=countdown))
    return run


def drill_schedule_fire(*, drill_id: int) -> list[DrillRun]:
    """What the drill's cron entry calls: one run per target path (or a blocked note)."""
    drill = Drill.objects.select_related("owner").filter(pk=drill_id).first()
    if drill is None:  # deleted while its schedule stayed in the admin
        log.warning(
            "drills: schedule fired for missing drill %s; delete its periodic task", drill_id
        )
        return []
    blocked = drill_blocked_reason(drill=drill)
    if blocked:
        log.info("drills: scheduled drill %s not started: %s", drill, blocked)
        with transaction.atomic():
            audit_record(action="drill.schedule_blocked", obj=drill, data={"reason": blocked[:500]})
        return []
    runs = []
    for path in drill_target_paths(drill=drill):
        try:
            if drill.kind == Drill.Kind.HUMAN:
                runs.append(human.human_run_create(drill=drill, path=path))
            else:
                runs.append(
                    drill_run_create(path=path, drill=drill, trigger=DrillRun.Trigger.SCHEDULE)
                )
        except (DrillError, DrillBlocked) as exc:  # one path's problem must not stop the rest
            log.warning("drills: %s not started for %s: %s", drill, path, exc)
            with transaction.atomic():
                audit_record(
                    action="drill.schedule_blocked",
                    obj=drill,
                    data={"path": path.slug, "reason": str(exc)[:500]},
                )
    return runs


# --- The step engine --------------------------------------------------------------------


def drill_run_claim(*, run_id: int, now: datetime | None = None):
    """Take the run if it is pending (and due), or running with an expired lease.

    Returns (run, stale_grant_id) or None when someone else holds it, it is finished,
    or it is not due yet.
    """
    now = now or timezone.now()
    stale_grant_id = None
    with transaction.atomic():
        run = (
            DrillRun.objects.select_for_update(skip_locked=True)
            .filter(pk=run_id, kind__in=[Drill.Kind.AUTOMATED, Drill.Kind.GAME_DAY])
            .first()
        )
        if run is None:
            return None
        if run.state == DrillRun.State.PENDING:
            if run.scheduled_for and run.scheduled_for > now:
                return None
        elif run.state == DrillRun.State.RUNNING and run.lease_expires_at < now:
            lost_in = run.current_step or "start"
            note = (
                f"Attempt {run.attempt} lost at {now:%H:%M:%S} UTC: the worker stopped "
                f"during step '{lost_in}' (lease expired)."
            )
            if run.attempt >= MAX_ATTEMPTS:
                run.state = DrillRun.State.FAILED
                run.finished_at = now
                run.failure_reason = (
                    f"Worker lost mid-run during step '{lost_in}' {run.attempt} times; "
                    "gave up. Check the worker logs for crashes or out-of-memory kills."
                )
                run.recovery_notes = (run.recovery_notes + "\n" + note).strip()
                run.save()
                run.steps.filter(state=DrillStep.State.RUNNING).update(
                    state=DrillStep.State.FAILED,
                    finished_at=now,
                    reason="The worker running this step was lost.",
                )
                audit_record(
                    action="drill.run_finished",
                    obj=run,
                    data={"state": run.state, "path": run.path.slug, "reason": run.failure_reason},
                )
                run_credentials_revoke(run, reason="given up: worker lost")
                return None
            run.recovery_notes = (run.recovery_notes + "\n" + note + " Resumed.").strip()
            verified = run.steps.filter(name="verify", state=DrillStep.State.PASSED).exists()
            to_reset = ~Q(state=DrillStep.State.PASSED)
            if not verified:
                # The credential of the lost attempt lived only in that process.
                to_reset |= Q(name="issue")
                stale_grant_id, run.grant_id, run.grant_jti = run.grant_id, None, ""
            run.steps.filter(to_reset).update(
                state=DrillStep.State.PENDING, started_at=None, finished_at=None, reason=""
            )
        else:
            return None
        run.state = DrillRun.State.RUNNING
        run.attempt += 1
        run.started_at = run.started_at or now
        run.lease_expires_at = now + timedelta(seconds=lease_seconds())
        run.save()
        # Progress only (the branch above that gives up, revoking, commits as usual): a
        # claim a database crash lost leaves the run pending, and it is run again.
        progress_only()
    return run, stale_grant_id


def _revoke_quietly(grant_id: int | None, *, reason: str) -> None:
    if not grant_id:
        return
    try:
        grant = Grant.objects.filter(pk=grant_id).first()
        if grant is not None and grant.state == "issued":
            grant_revoke(grant=grant, actor=None, reason=f"drill clean-up: {reason}")
    except Exception as exc:  # the credential expires on its own within minutes anyway
        log.warning("drills: could not revoke drill grant %s: %s", grant_id, exc)


def run_credentials_revoke(run: DrillRun, *, reason: str) -> int:
    """Revoke every credential the run issued. Inside the caller's transaction when it has
    one, so a run is never recorded as ended with a live credential left behind."""
    from breakglass.access.lifecycle import drill_grants_revoke

    return drill_grants_revoke(drill_ref=run.drill_ref, reason=f"run {run.pk} {reason}")


def _run_credentials_revoke_quietly(run: DrillRun, *, reason: str) -> None:
    """After the fact (a worker's clean-up path): the reaper's sweep retries a failure."""
    try:
        run_credentials_revoke(run, reason=reason)
    except Exception as exc:
        log.warning("drills: could not revoke the credentials of run %s: %s", run.pk, exc)


def _still_ours(run: DrillRun, **fields) -> bool:
    return bool(
        DrillRun.objects.filter(
            pk=run.pk, state=DrillRun.State.RUNNING, attempt=run.attempt
        ).update(**fields)
    )


def _step_start(run: DrillRun, step: DrillStep, *, previous: tuple | None = None) -> str:
    """Renew the lease, name the step and mark it running, unless a real SEV1 is open
    (asked by the same UPDATE). `previous` is the last step's result, `(pk, fields)`,
    written first in the same message. Returns "started", "sev1", or "stopped" (aborted
    by the kill switch, or taken over after our lease expired).

    A progress write: if a database crash lost it, the run would look as it did a step
    earlier, with a lease that expires, and the reaper would resume it from there. On
    PostgreSQL it is one round trip (the step is marked only if the run's UPDATE matched),
    so a step costs the database one."""
    now = timezone.now()
    renewable = DrillRun.objects.filter(
        pk=run.pk, state=DrillRun.State.RUNNING, attempt=run.attempt
    ).exclude(Exists(real_sev1_incidents()))
    renewal = {
        "current_step": step.name,
        "lease_expires_at": now + timedelta(seconds=lease_seconds()),
    }
    running = {"state": DrillStep.State.RUNNING, "started_at": now}
    before = (
        [update_sql(DrillStep.objects.filter(pk=previous[0]), **previous[1])] if previous else []
    )
    if connection.vendor == "postgresql":
        run_update, run_params = update_sql(renewable, **renewal)
        step_update, step_params = update_sql(DrillStep.objects.filter(pk=step.pk), **running)
        # The step's UPDATE ends with its WHERE on the step's id; the condition is added.
        started = progress_execute(
            *before,
            (
                f"WITH renewed AS ({run_update} RETURNING 1) "  # noqa: S608 - SQL from the ORM
                f"{step_update} AND EXISTS (SELECT 1 FROM renewed)",
                run_params + step_params,
            ),
        )
    else:
        with progress_atomic():
            if previous:
                DrillStep.objects.filter(pk=previous[0]).update(**previous[1])
            started = renewable.update(**renewal) and DrillStep.objects.filter(pk=step.pk).update(
                **running
            )
    if started:
        return "started"
    return "sev1" if real_sev1_is_open() else "stopped"


def drill_run_execute(*, run_id: int, sync: bool = False, on_step=None) -> DrillRun:
    """Claim the run and execute its remaining steps in order. Safe to call twice."""
    return _to_the_end(_run_steps(run_id=run_id, sync=sync, on_step=on_step))


def drill_runs_execute(*, run_ids: list[int]) -> list[DrillRun]:
    """Execute several runs (a game day's batch) in one task, one bundle for all of them.

    Each run goes up to its re-seal's revocation and waits there while the next runs; the
    block's end publishes one bundle listing every one of those revocations
    (`revocations_published_together`); then each run checks that bundle, finishes and
    frees its slot. A batch of n runs signs one bundle instead of n: signing and writing
    it is the largest part of a run's cost. Each run keeps its own lease and heartbeat
    while it waits, and one that fails or is lost is resumed on its own by the reaper.
    """
    runs, waiting = [], []
    with revocations_published_together():
        for run_id in run_ids:
            steps = _run_steps(run_id=run_id, pump=False, wait_for_bundle=True)
            try:
                next(steps)
                waiting.append(steps)
            except StopIteration as done:
                runs.append(done.value)
            except Exception:  # its lease expires and the reaper resumes it on its own
                log.exception("drills: run %s failed in a batch", run_id)
    for steps in waiting:
        try:
            runs.append(_to_the_end(steps))
        except Exception:
            log.exception("drills: a run failed in a batch after its re-seal")
    for game_day_id in {run.game_day_id for run in runs if run.game_day_id}:
        gameday.gameday_pump(game_day_id=game_day_id)
    return runs


def _to_the_end(steps: Iterator[None]) -> DrillRun:
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def _run_steps(
    *,
    run_id: int,
    sync: bool = False,
    on_step=None,
    pump: bool = True,
    wait_for_bundle: bool = False,
) -> Iterator[None]:
    """Claim the run and execute its steps; returns (as StopIteration's value) the run.
    With `wait_for_bundle` it yields once, between the re-seal's revocation and its check,
    for the caller to publish the bundle (drill_runs_execute)."""
    claim = drill_run_claim(run_id=run_id)
    if claim is None:
        run = DrillRun.objects.get(pk=run_id)
        if pump and run.game_day_id and run.is_finished:
            gameday.gameday_pump(game_day_id=run.game_day_id)
        return run
    run, stale_grant_id = claim
    _revoke_quietly(stale_grant_id, reason="superseded after a lost worker")
    ctx = StepContext(
        run=run, path=BackupPath.objects.select_related("service").get(pk=run.path_id), sync=sync
    )
    if run.grant_id:
        ctx.grant = Grant.objects.filter(pk=run.grant_id).first()

    def renew() -> bool:
        return _still_ours(
            run, lease_expires_at=timezone.now() + timedelta(seconds=lease_seconds())
        )

    with lease_heartbeat(renew, every=lease_seconds() / 4, what=f"drill run {run.pk}"):
        yield from _steps_execute(run, ctx, on_step=on_step, wait_for_bundle=wait_for_bundle)
    run = DrillRun.objects.get(pk=run.pk)
    if pump and run.game_day_id and run.is_finished:
        # Whatever way the run ended (passed, failed, aborted), its slot frees up.
        gameday.gameday_pump(game_day_id=run.game_day_id)
    return run


def _steps_execute(
    run: DrillRun, ctx: StepContext, *, on_step=None, wait_for_bundle: bool = False
) -> Iterator[None]:
    required = set(run.required_steps or STEP_NAMES)
    failures: list[str] = []
    first = True
    # A step's result is written with the next step's start (one round trip for both);
    # lost in a crash, the step runs again when the run is resumed.
    result: tuple | None = None
    for step in run.steps.order_by("order"):
        if step.state == DrillStep.State.PASSED:
            continue
        # The manual switch aborts runs in the database (seen by _step_start below);
        # a real SEV1 is not written anywhere we own, so it is asked before every step:
        # here before the first, and by _step_start's UPDATE before each.
        if first:
            engaged, why = killswitch_state()
            first = False
        else:
            engaged, why = False, ""
        started = "" if engaged else _step_start(run, step, previous=result)
        result = None
        if started == "sev1":
            engaged, why = True, SEV1_REASON
        if engaged:
            _still_ours(
                run,
                state=DrillRun.State.ABORTED,
                finished_at=timezone.now(),
                failure_reason=f"Kill switch {why}",
            )
            _abort_remaining_steps(run, reason=f"Not run: kill switch {why}")
            _run_credentials_revoke_quietly(run, reason="aborted: kill switch")
            break
        if started == "stopped":
            # Aborted (kill switch) or taken over after our lease expired: stop here.
            stopped = DrillRun.objects.filter(pk=run.pk).values_list("failure_reason", flat=True)
            why_stopped = next(iter(stopped), "") or "the run was taken over"
            _abort_remaining_steps(run, reason=f"Not run: {why_stopped}")
            _run_credentials_revoke_quietly(run, reason="stopped")
            break
        if step.name == "reseal" and wait_for_bundle:
            # Revoke now; check the bundle once the batch's one bundle is published.
            state, evidence, reason = step_attempt(step.name, ctx, step=reseal_revoke)
            if state == "":
                yield
                state, evidence, reason = step_attempt(step.name, ctx, step=reseal_check)
        else:
            state, evidence, reason = step_attempt(step.name, ctx)
        fields = {
            "state": state,
            "evidence": evidence,
            "reason": reason,
            "finished_at": timezone.now(),
        }
        result = (step.pk, fields)
        if on_step is not None:
            progress_update(DrillStep.objects.filter(pk=step.pk), **fields)
            result = None
            on_step(DrillStep.objects.get(pk=step.pk))
        if state != DrillStep.State.PASSED and step.name in required:
            failures.append(f"{STEP_TITLES[step.name]}: {reason}")
    else:
        if result is not None:
            progress_update(DrillStep.objects.filter(pk=result[0]), **result[1])
        _finish(run, failures)


def step_attempt(name: str, ctx: StepContext, *, step=None) -> tuple[str, dict, str]:
    """Run step `name` (or `step`, a part of it) and say how it ended. A part that returns
    None, nothing to report yet, gives the state ""."""
    try:
        outcome = step_run(name, ctx) if step is None else step(ctx)
        if outcome is None:
            return "", {}, ""
        ok, evidence, reason = outcome
    except StepSkipped as exc:
        return DrillStep.State.SKIPPED, {}, f"Skipped: {exc}."
    except SoftTimeLimitExceeded:
        return DrillStep.State.FAILED, {}, "The step ran past the drill's time limit."
    except Exception as exc:
        log.exception("drills: step %s crashed", name)
        return (
            DrillStep.State.FAILED,
            {"error": type(exc).__name__},
            f"The step crashed ({type(exc).__name__}: {exc}).",
        )
    return (DrillStep.State.PASSED if ok else DrillStep.State.FAILED), evidence, reason


def _abort_remaining_steps(run: DrillRun, *, reason: str) -> None:
    run.steps.filter(state__in=[DrillStep.State.PENDING, DrillStep.State.RUNNING]).update(
        state=DrillStep.State.SKIPPED, reason=reason, finished_at=timezone.now()
    )


def _finish(run: DrillRun, failures: list[str]) -> None:
    verify = run.steps.filter(name="verify", state=DrillStep.State.PASSED).first()
    tta = verify.evidence.get("time_to_access_ms") if verify else None
    if tta is not None and not failures and tta > run.target_seconds * 1000:
        failures.append(
            f"Time to access was {tta / 1000:.1f}s, over the target of {run.target_seconds}s."
        )
    state = DrillRun.State.FAILED if failures else DrillRun.State.PASSED
    reason = failures[0] if failures else ""
    if len(failures) > 1:
        reason += f" (and {len(failures) - 1} more failing step(s))"
    with transaction.atomic():
        if not _still_ours(
            run,
            state=state,
            finished_at=timezone.now(),
            time_to_access_ms=tta,
            failure_reason=reason,
            current_step="",
            lease_expires_at=None,
        ):
            return
        audit_record(
            action="drill.run_finished",
            obj=run,
            data={"state": state, "path": run.path.slug, "reason": reason[:500], "tta_ms": tta},
        )
        # The re-seal step revokes the credential when it runs and passes; whatever it did,
        # nothing the run issued outlives it.
        run_credentials_revoke(run, reason=f"finished ({state})")


def drill_runs_reap(*, now: datetime | None = None) -> dict:
    """Periodic safety net: re-send runs whose worker died or whose task never arrived,
    top up game days, and close finished game days."""
    now = now or timezone.now()
    automated = [Drill.Kind.AUTOMATED, Drill.Kind.GAME_DAY]
    lost = list(
        DrillRun.objects.filter(
            kind__in=automated, state=DrillRun.State.RUNNING, lease_expires_at__lt=now
        ).values_list("pk", flat=True)
    )
    stuck = list(
        DrillRun.objects.filter(kind__in=automated, state=DrillRun.State.PENDING)
        .filter(Q(scheduled_for__isnull=True) | Q(scheduled_for__lte=now))
        .filter(Q(queued_at__lt=now - REQUEUE_AFTER) | Q(queued_at__isnull=True, game_day=None))
        .values_list("pk", flat=True)[:1000]
    )
    DrillRun.objects.filter(pk__in=stuck).update(queued_at=now)
    runs_enqueue(lost + stuck)
    pumped = 0
    for game_day in GameDay.objects.filter(finished_at__isnull=True):
        pumped += gameday.gameday_pump(game_day_id=game_day.pk)
    abandoned = _human_runs_abandon(now=now)
    swept = _finished_runs_credentials_sweep()
    return {
        "lost": len(lost),
        "requeued": len(stuck),
        "pumped": pumped,
        "abandoned": abandoned,
        "credentials_revoked": swept,
    }


def _human_runs_abandon(*, now: datetime) -> int:
    """Human runs nobody finished within DRILLS_HUMAN_RUN_ABANDON_HOURS of their start time
    are closed as aborted, with their credentials revoked."""
    from drills.human import human_run_abandon

    cutoff = now - timedelta(hours=settings.DRILLS_HUMAN_RUN_ABANDON_HOURS)
    runs = DrillRun.objects.filter(
        kind=Drill.Kind.HUMAN,
        state__in=[DrillRun.State.PENDING, DrillRun.State.RUNNING],
        scheduled_for__lt=cutoff,
    )
    count = 0
    for run in runs:
        if human_run_abandon(run=run):
            count += 1
    return count


def _finished_runs_credentials_sweep() -> int:
    """Safety net: a drill credential still issued for a run that has ended (its clean-up
    failed, or the run was aborted in bulk by the kill switch) is revoked now."""
    from breakglass.access.models import Grant

    refs = set(
        Grant.objects.filter(
            drill=True, state=Grant.State.ISSUED, drill_ref__startswith="drill-run:"
        ).values_list("drill_ref", flat=True)
    )
    run_ids = [int(ref.split(":", 1)[1]) for ref in refs if ref.split(":", 1)[1].isdigit()]
    revoked = 0
    for run in DrillRun.objects.filter(pk__in=run_ids, state__in=DrillRun.FINISHED):
        with transaction.atomic():
            revoked += run_credentials_revoke(run, reason="ended (reaper sweep)")
    return revoked


# --- Game days ----------------------------------------------------------------------------
