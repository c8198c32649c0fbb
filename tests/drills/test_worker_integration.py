"""Drills on real Celery workers, real Redis and real PostgreSQL: scheduled runs, a worker
SIGKILLed in the middle of a run, and the kill switch stopping a run in flight."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from breakglass.access.models import Grant
from devkit.workers import celery_worker, real_broker, wait_for, worker_env
from drills.definitions import drill_create
from drills.engine import drill_run_create, drill_runs_reap
from drills.killswitch import killswitch_engage
from drills.models import DrillRun

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fresh_kombu_pools():
    """devkit.workers closes the app's pool on exit, but kombu keeps closed pools in its
    global registry keyed by URL; a second real_broker() on the same URL would get one."""
    from kombu import pools

    pools.reset()
    yield
    pools.reset()


@pytest.fixture
def data_dir(tmp_path, settings):
    """One trust directory and one key-encryption key shared by this process and workers."""
    settings.TRUST_PUBLISH_DIR = tmp_path / "data" / "test-trust"
    return tmp_path / "data"


def env_for(data_dir: Path, **extra: str) -> dict[str, str]:
    return worker_env(
        BREAKGLASS_DATA_DIR=str(data_dir),
        BREAKGLASS_KEK=settings.BREAKGLASS_KEK,
        BREAKGLASS_ISSUER=settings.BREAKGLASS_ISSUER,
        **extra,
    )


def state_of(run: DrillRun) -> str:
    run.refresh_from_db()
    return run.state


def test_a_scheduled_drill_runs_on_a_real_worker(data_dir, healthy_path, coordinator):
    drill = drill_create(
        name="Every minute", owner=coordinator, paths=[healthy_path], cron="* * * * *"
    )
    entry = PeriodicTask.objects.get(pk=drill.schedule_id)
    with real_broker() as app:
        app.control.purge()
        with celery_worker(env=env_for(data_dir)):
            # Exactly what beat sends when the cron entry is due.
            app.send_task(entry.task, kwargs=json.loads(entry.kwargs))
            run = wait_for(lambda: DrillRun.objects.filter(drill=drill).first(), what="the run")
            wait_for(lambda: state_of(run) in DrillRun.FINISHED, timeout=60, what="the drill")

    assert run.state == "passed", run.failure_reason
    assert run.trigger == "schedule" and run.time_to_access_ms is not None
    assert list(run.steps.values_list("state", flat=True)) == ["passed"] * 7


def test_a_worker_killed_mid_run_leaves_a_run_that_is_resumed(data_dir, healthy_path, tmp_path):
    block = tmp_path / "block"
    block.write_text("hold")
    env = env_for(
        data_dir,
        DRILLS_TEST_BLOCK_FILE=str(block),
        DRILLS_TEST_BLOCK_STEP="verify",
        DRILLS_LEASE_SECONDS="3",
    )
    with real_broker() as app:
        app.control.purge()
        with celery_worker(env=env, concurrency=1) as worker:
            run = drill_run_create(path=healthy_path)
            wait_for(lambda: Path(f"{block}.reached").exists(), timeout=60, what="step 3")
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        run.refresh_from_db()
        assert (run.state, run.current_step) == ("running", "verify")
        first_grant = run.grant_id
        block.unlink()

        with celery_worker(env=env, concurrency=1):
            wait_for(lambda: DrillRun.objects.get(pk=run.pk).lease_expires_at is not None)
            # The periodic reaper notices the expired lease and sends the run again.
            wait_for(lambda: drill_runs_reap()["lost"] >= 1, timeout=30, what="lease expiry")
            wait_for(lambda: state_of(run) in DrillRun.FINISHED, timeout=60, what="the resume")

    assert run.state == "passed", run.failure_reason
    assert run.attempt == 2
    assert "during step 'verify'" in run.recovery_notes
    # The credential issued by the killed attempt was revoked; a fresh one was verified.
    assert run.grant_id != first_grant
    assert Grant.objects.get(pk=first_grant).state == Grant.State.REVOKED


def test_the_kill_switch_stops_a_run_in_flight(data_dir, healthy_path, coordinator, tmp_path):
    block = tmp_path / "block"
    block.write_text("hold")
    env = env_for(data_dir, DRILLS_TEST_BLOCK_FILE=str(block), DRILLS_TEST_BLOCK_STEP="freshness")
    with real_broker() as app:
        app.control.purge()
        with celery_worker(env=env, concurrency=1):
            run = drill_run_create(path=healthy_path)
            wait_for(lambda: Path(f"{block}.reached").exists(), timeout=60, what="step 4")
            killswitch_engage(actor=coordinator, reason="real incident brewing")
            block.unlink()
            wait_for(
                lambda: (
                    Grant.objects.get(pk=DrillRun.objects.get(pk=run.pk).grant_id).state
                    == Grant.State.REVOKED
                ),
                timeout=30,
                what="the worker to revoke its drill credential",
            )

    run.refresh_from_db()
    assert run.state == "aborted"
    assert "real incident brewing" in run.failure_reason
    assert run.steps.get(name="approvers").state == "skipped"
