"""The run engine: safe to run twice, resumes or fails runs whose worker died, obeys the
kill switch (manual and during a real SEV1), blackout windows and owner sign-off."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from breakglass.access.models import Grant
from drills.definitions import drill_create, drill_signoff
from drills.engine import (
    MAX_ATTEMPTS,
    drill_run_claim,
    drill_run_create,
    drill_run_execute,
    drill_runs_reap,
    lease_seconds,
)
from drills.errors import DrillBlocked
from drills.killswitch import blackout_create, killswitch_engage, killswitch_release
from drills.models import DrillRun
from drills.selectors import killswitch_state
from drills.steps import STEPS

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("autocommit_callbacks")]


def new_run(path) -> DrillRun:
    return drill_run_create(path=path, enqueue=False)


def test_running_a_finished_run_again_changes_nothing(healthy_path):
    run = new_run(healthy_path)
    first = drill_run_execute(run_id=run.pk, sync=True)

    again = drill_run_execute(run_id=run.pk, sync=True)

    assert again.state == first.state == "passed"
    assert again.attempt == 1
    assert Grant.objects.filter(drill=True).count() == 1


def test_a_run_held_by_a_live_worker_is_not_claimed_twice(healthy_path):
    run = new_run(healthy_path)
    assert drill_run_claim(run_id=run.pk) is not None

    assert drill_run_claim(run_id=run.pk) is None


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: nothing in the engine catches it, nothing gets cleaned up."""


def _lose_worker_during(run: DrillRun, step_name: str, monkeypatch) -> None:
    def die(ctx):
        raise WorkerKilled

    with monkeypatch.context() as patch:
        patch.setitem(STEPS, step_name, die)
        with pytest.raises(WorkerKilled):
            drill_run_execute(run_id=run.pk, sync=True)
    run.refresh_from_db()
    assert run.state == "running" and run.current_step == step_name


def test_a_run_whose_worker_died_is_resumed_after_its_lease_expires(healthy_path, monkeypatch):
    run = new_run(healthy_path)
    _lose_worker_during(run, "approvers", monkeypatch)

    assert drill_run_execute(run_id=run.pk, sync=True).state == "running"  # lease still live
    with time_machine.travel(timezone.now() + timedelta(seconds=lease_seconds() + 5)):
        resumed = drill_run_execute(run_id=run.pk, sync=True)

    assert resumed.state == "passed", resumed.failure_reason
    assert resumed.attempt == 2
    assert "during step 'approvers'" in resumed.recovery_notes
    assert "Resumed" in resumed.recovery_notes
    # Steps that had passed were kept, the interrupted one ran again.
    assert Grant.objects.filter(drill=True).count() == 1


def test_a_run_lost_before_verifying_gets_a_fresh_credential_and_revokes_the_old(
    healthy_path, monkeypatch
):
    run = new_run(healthy_path)
    _lose_worker_during(run, "verify", monkeypatch)
    first_grant = DrillRun.objects.get(pk=run.pk).grant_id

    with time_machine.travel(timezone.now() + timedelta(seconds=lease_seconds() + 5)):
        resumed = drill_run_execute(run_id=run.pk, sync=True)

    assert resumed.state == "passed", resumed.failure_reason
    assert resumed.grant_id != first_grant
    assert Grant.objects.get(pk=first_grant).state == Grant.State.REVOKED


def test_a_run_lost_too_many_times_is_failed_with_the_step_it_died_in(healthy_path):
    run = new_run(healthy_path)
    DrillRun.objects.filter(pk=run.pk).update(
        state="running",
        attempt=MAX_ATTEMPTS,
        current_step="verify",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )

    run = drill_run_execute(run_id=run.pk, sync=True)

    assert run.state == "failed"
    assert "Worker lost mid-run during step 'verify'" in run.failure_reason


def test_the_reaper_resends_runs_whose_lease_expired(healthy_path, monkeypatch):
    sent = []
    monkeypatch.setattr(
        "drills.engine.runs_enqueue", lambda ids, countdown=None, batch=1: sent.extend(ids)
    )
    run = new_run(healthy_path)
    DrillRun.objects.filter(pk=run.pk).update(
        state="running", attempt=1, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    result = drill_runs_reap()

    assert result["lost"] == 1 and sent == [run.pk]


def test_a_dead_workers_run_is_resent_within_30_seconds(healthy_path, monkeypatch):
    from django_celery_beat.models import PeriodicTask

    sent = []
    monkeypatch.setattr(
        "drills.engine.runs_enqueue", lambda ids, countdown=None, batch=1: sent.extend(ids)
    )
    run = new_run(healthy_path)
    died_at = timezone.now()
    with time_machine.travel(died_at, tick=False):
        drill_run_claim(run_id=run.pk)  # ...and the worker is SIGKILLed here
    reaper = PeriodicTask.objects.get(task="drills.tasks.drill_runs_reap_task").interval
    # The reaper's next pass after the lease expired comes at most one interval later.
    latest = lease_seconds() + reaper.every + 1
    assert latest <= 31
    with time_machine.travel(died_at + timedelta(seconds=latest), tick=False):
        assert drill_runs_reap()["lost"] == 1
    assert sent == [run.pk]


def test_a_run_whose_task_was_lost_with_the_broker_is_resent_after_30_seconds(
    healthy_path, monkeypatch
):
    sent = []
    monkeypatch.setattr(
        "drills.engine.runs_enqueue", lambda ids, countdown=None, batch=1: sent.extend(ids)
    )
    queued_at = timezone.now()
    run = drill_run_create(path=healthy_path, enqueue=True)  # Redis restarts empty
    with time_machine.travel(queued_at + timedelta(seconds=20), tick=False):
        assert drill_runs_reap()["requeued"] == 0  # it may still be on its way
    with time_machine.travel(queued_at + timedelta(seconds=31), tick=False):
        assert drill_runs_reap()["requeued"] == 1
    assert sent == [run.pk, run.pk]  # the original send (lost), then the reaper's


@pytest.mark.django_db(transaction=True)  # the heartbeat writes from its own connection
def test_a_live_worker_renews_its_lease_while_a_slow_step_runs(healthy_path, monkeypatch):
    """The heartbeat keeps a run whose step takes longer than the lease."""
    renewed = []

    def slow_step(ctx):
        run = DrillRun.objects.get(pk=ctx.run.pk)
        started = run.lease_expires_at
        # Stand-in for a step slower than the lease: wait for the heartbeat's renewal.
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.lease_expires_at > started:
                renewed.append(run.lease_expires_at)
                break
            time.sleep(0.02)
        return True, {}, ""

    monkeypatch.setattr("drills.engine.lease_seconds", lambda: 0.2)
    monkeypatch.setitem(STEPS, "approvers", slow_step)
    run = new_run(healthy_path)
    run = drill_run_execute(run_id=run.pk, sync=True)
    assert renewed, "the lease was never renewed during the step"
    assert run.attempt == 1


def test_the_kill_switch_blocks_new_runs(healthy_path, coordinator):
    killswitch_engage(actor=coordinator, reason="payments migration tonight")

    with pytest.raises(DrillBlocked, match="payments migration tonight"):
        new_run(healthy_path)


def test_the_kill_switch_aborts_a_running_drill_at_its_next_step(healthy_path, coordinator):
    run = new_run(healthy_path)

    def engage_after_issue(step):
        if step.name == "issue":
            killswitch_engage(actor=coordinator, reason="real trouble")

    run = drill_run_execute(run_id=run.pk, sync=True, on_step=engage_after_issue)

    assert run.state == "aborted"
    assert "real trouble" in run.failure_reason
    assert run.steps.get(name="verify").state == "skipped"
    # The drill credential it had issued is revoked, not left lying around.
    assert Grant.objects.get(pk=run.grant_id).state == Grant.State.REVOKED


def test_releasing_the_kill_switch_lets_drills_run_again(healthy_path, coordinator):
    killswitch_engage(actor=coordinator, reason="freeze")
    killswitch_release(actor=coordinator, reason="freeze over")

    assert killswitch_state() == (False, "")
    assert new_run(healthy_path).state == "pending"


def test_a_real_sev1_engages_the_kill_switch_automatically(healthy_path, commander, comms_lead):
    from comms.incidents import incident_declare

    incident_declare(title="Everything is down", severity=1, actor=commander, comms_lead=comms_lead)

    engaged, why = killswitch_state()
    assert engaged and "SEV1" in why
    with pytest.raises(DrillBlocked, match="SEV1"):
        new_run(healthy_path)


def test_a_drill_sev1_does_not_engage_the_kill_switch(commander, comms_lead):
    from comms.incidents import incident_declare

    incident_declare(
        title="Game day", severity=1, actor=commander, comms_lead=comms_lead, drill=True
    )

    assert killswitch_state()[0] is False


def test_a_blackout_window_blocks_new_runs(healthy_path, coordinator):
    now = timezone.now()
    blackout_create(
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=1),
        reason="year-end freeze",
        actor=coordinator,
    )

    with pytest.raises(DrillBlocked, match="year-end freeze"):
        new_run(healthy_path)
    # After the window, drills run again.
    with time_machine.travel(now + timedelta(hours=2)):
        assert drill_run_create(path=healthy_path, enqueue=False).state == "pending"


def test_a_drill_that_needs_sign_off_waits_for_its_owner(healthy_path, coordinator):
    drill = drill_create(
        name="Signed", owner=coordinator, paths=[healthy_path], requires_signoff=True
    )
    with pytest.raises(DrillBlocked, match="sign-off"):
        drill_run_create(path=healthy_path, drill=drill, enqueue=False)

    drill_signoff(drill=drill, user=coordinator)

    assert drill_run_create(path=healthy_path, drill=drill, enqueue=False).state == "pending"


def test_a_real_sev1_declared_mid_run_aborts_it_at_the_next_step(
    healthy_path, commander, comms_lead
):
    from comms.incidents import incident_declare

    run = new_run(healthy_path)

    def declare_after_verify(step):
        if step.name == "verify":
            incident_declare(title="Outage", severity=1, actor=commander, comms_lead=comms_lead)

    run = drill_run_execute(run_id=run.pk, sync=True, on_step=declare_after_verify)

    assert run.state == "aborted" and "SEV1" in run.failure_reason
    assert run.steps.get(name="freshness").state == "skipped"
    assert Grant.objects.get(pk=run.grant_id).state == Grant.State.REVOKED


def test_only_ssh_paths_with_a_probe_host_get_the_probe_steps(healthy_path, ssh_path):
    from drills.models import step_names_for

    assert "ssh_probe" not in step_names_for(healthy_path)
    assert "ssh_probe" not in step_names_for(ssh_path)
    ssh_path.probe_ssh_host, ssh_path.probe_ssh_login = "10.0.0.5", "breakglass"
    assert step_names_for(ssh_path)[3] == "ssh_probe" and step_names_for(ssh_path)[-1] == (
        "ssh_reseal"
    )
    ssh_path.save()
    run = new_run(ssh_path)
    assert [s.name for s in run.steps.order_by("order")] == step_names_for(ssh_path)
