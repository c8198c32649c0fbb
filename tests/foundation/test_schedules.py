"""Every periodic task comes from one table (breakglass/project/schedules.py)."""

from django_celery_beat.models import PeriodicTask

from breakglass.project.celery import app
from breakglass.project.schedules import SCHEDULES, schedules_ensure

# The names earlier releases stored: a renamed entry would leave the old row running.
STORED_NAMES = {
    "outbox: sweep undelivered messages",
    "access: expire stale requests and grants",
    "keys: refresh the trust bundle before it expires",
    "keys: publish revocations a crash left unpublished",
    "audit: record the chain head outside the database",
    "comms: update cadence reminders and escalation",
    "drills: recover lost runs and pump game days",
    "drills: weekly report",
}


def test_migrate_creates_every_schedule_in_the_table_and_nothing_else(db):
    stored = {task.name: task for task in PeriodicTask.objects.all()}
    assert set(stored) == {schedule.name for schedule in SCHEDULES} == STORED_NAMES
    for schedule in SCHEDULES:
        row = stored[schedule.name]
        assert row.task == schedule.task
        if schedule.every_seconds:
            assert row.interval.every == schedule.every_seconds
        else:
            assert row.crontab.minute == schedule.cron.split()[0]


def test_every_scheduled_task_is_a_registered_task(db):
    app.loader.import_default_modules()
    unknown = [s.task for s in SCHEDULES if s.task not in app.tasks]
    assert unknown == []


def test_running_the_hook_again_keeps_what_an_operator_changed(db):
    row = PeriodicTask.objects.get(name="comms: update cadence reminders and escalation")
    row.enabled = False
    row.save()
    schedules_ensure()
    assert PeriodicTask.objects.filter(name=row.name).count() == 1
    assert PeriodicTask.objects.get(name=row.name).enabled is False
    assert PeriodicTask.objects.count() == len(SCHEDULES)
