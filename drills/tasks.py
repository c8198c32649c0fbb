"""Thin Celery tasks: take IDs, call a service. Safe to run twice (runs are claimed with a
conditional update), time-limited, acks_late (set globally) so a killed worker's task is
delivered again."""

from celery import shared_task
from django.utils import timezone

from drills.engine import (
    drill_run_execute,
    drill_runs_execute,
    drill_runs_reap,
    drill_schedule_fire,
)
from drills.models import DrillRun
from drills.reports import report_send


@shared_task(
    name="drills.tasks.drill_run_task",
    bind=True,
    soft_time_limit=120,
    time_limit=150,
    ignore_result=True,
    max_retries=10,
)
def drill_run_task(self, run_id: int) -> str:
    run = drill_run_execute(run_id=run_id)
    if run.state == DrillRun.State.RUNNING and run.lease_expires_at:
        # Another worker holds a live lease (a duplicate delivery, or one that died a
        # moment ago): come back when the lease has expired and take over if needed.
        wait = (run.lease_expires_at - timezone.now()).total_seconds()
        raise self.retry(countdown=max(int(wait) + 1, 1))
    return run.state


@shared_task(
    name="drills.tasks.drill_runs_task",
    soft_time_limit=120,
    time_limit=150,
    ignore_result=True,
)
def drill_runs_task(run_ids: list[int]) -> list[str]:
    # A game day's batch: one published bundle for all its runs' revocations. A run
    # another worker holds, or one lost here, is the reaper's to resume, alone.
    return [run.state for run in drill_runs_execute(run_ids=run_ids)]


@shared_task(
    name="drills.tasks.drill_scheduled_task",
    soft_time_limit=120,
    time_limit=150,
    ignore_result=True,
)
def drill_scheduled_task(drill_id: int) -> int:
    return len(drill_schedule_fire(drill_id=drill_id))


@shared_task(
    name="drills.tasks.drill_runs_reap_task", soft_time_limit=60, time_limit=90, ignore_result=True
)
def drill_runs_reap_task() -> dict:
    return drill_runs_reap()


@shared_task(
    name="drills.tasks.drill_report_send_task",
    soft_time_limit=120,
    time_limit=150,
    ignore_result=True,
)
def drill_report_send_task(days: int = 7) -> int:
    return report_send(days=days)
