"""Drill definitions keep their cron in django-celery-beat, and firing one starts runs."""

from __future__ import annotations

import json

import pytest
from django_celery_beat.models import PeriodicTask

from drills.definitions import drill_create
from drills.engine import drill_schedule_fire
from drills.errors import DrillError
from drills.killswitch import killswitch_engage
from drills.models import DrillParticipant, DrillRun
from drills.tasks import drill_scheduled_task
from tests.drills.conftest import responders

pytestmark = pytest.mark.django_db


def test_a_drill_schedule_is_a_periodic_task_operators_can_edit(healthy_path, coordinator):
    drill = drill_create(
        name="Nightly SSO", owner=coordinator, paths=[healthy_path], cron="15 2 * * *"
    )

    task = PeriodicTask.objects.get(pk=drill.schedule_id)
    assert task.task == "drills.tasks.drill_scheduled_task"
    assert json.loads(task.kwargs) == {"drill_id": drill.pk}
    assert (task.crontab.minute, task.crontab.hour) == ("15", "2")


def test_a_malformed_cron_is_refused_with_the_expected_shape(healthy_path, coordinator):
    with pytest.raises(DrillError, match="five cron fields"):
        drill_create(name="Bad", owner=coordinator, paths=[healthy_path], cron="every night")


def test_an_out_of_range_cron_is_refused_before_anything_is_saved(healthy_path, coordinator):
    from drills.models import Drill

    with pytest.raises(DrillError, match="'61 \\* \\* \\* \\*'"):
        drill_create(name="Bad", owner=coordinator, paths=[healthy_path], cron="61 * * * *")
    assert not Drill.objects.filter(name="Bad").exists()
    assert not PeriodicTask.objects.filter(name="drill: Bad").exists()


def test_the_weekly_report_and_the_reaper_are_scheduled_after_migrate():
    names = set(PeriodicTask.objects.values_list("name", flat=True))

    assert {"drills: weekly report", "drills: recover lost runs and pump game days"} <= names
    weekly = PeriodicTask.objects.get(name="drills: weekly report")
    assert weekly.crontab.day_of_week == "1"


def test_firing_a_tier_1_drill_starts_one_run_per_tier_1_path(
    healthy_path, flawed_path, coordinator, django_capture_on_commit_callbacks
):
    from breakglass.access.models import CriticalService

    CriticalService.objects.filter(slug="sso").update(tier=1)
    drill = drill_create(name="Tier 1", owner=coordinator, selection="tier-1")

    with django_capture_on_commit_callbacks() as callbacks:
        runs = drill_scheduled_task.run(drill_id=drill.pk)

    assert runs == 2
    assert set(DrillRun.objects.values_list("path__slug", "trigger")) == {
        ("sso-backup", "schedule"),
        ("sso-via-chat", "schedule"),
    }
    assert len(callbacks) == 2  # each run queued after commit


def test_a_blocked_schedule_starts_nothing(healthy_path, coordinator):
    drill = drill_create(name="Blocked", owner=coordinator, paths=[healthy_path])
    killswitch_engage(actor=coordinator, reason="incident review week")

    assert drill_schedule_fire(drill_id=drill.pk) == []
    assert not DrillRun.objects.exists()


def test_announce_ahead_mails_the_owners_and_delays_the_run(healthy_path, coordinator):
    from breakglass.access.models import Team
    from breakglass.outbox.models import OutboxMessage

    Team.objects.get(slug="platform").members.add(coordinator)
    drill = drill_create(
        name="Announced", owner=coordinator, paths=[healthy_path], announce_minutes=30
    )

    (run,) = drill_schedule_fire(drill_id=drill.pk)

    assert (run.scheduled_for - run.created_at).total_seconds() == 30 * 60
    mail = OutboxMessage.objects.get(source=f"drills.run:{run.pk}")
    assert mail.recipient == coordinator.email and "[DRILL]" in mail.payload["subject"]


def test_a_human_drill_invites_picked_responders_with_a_link(healthy_path, coordinator):
    from breakglass.outbox.models import OutboxMessage

    responders("rita", "ravi", "nora")
    drill = drill_create(
        name="Human SSO", owner=coordinator, kind="human", paths=[healthy_path], participant_count=2
    )

    (run,) = drill_schedule_fire(drill_id=drill.pk)

    assert run.kind == "human"
    assert DrillParticipant.objects.filter(run=run).count() == 2
    invite = OutboxMessage.objects.filter(source=f"drills.run:{run.pk}").first()
    assert f"/drills/runs/{run.pk}/participate/" in invite.payload["body"]
    assert "DRILL" in invite.payload["subject"]


def test_a_human_drill_with_nobody_eligible_is_skipped_and_audited(healthy_path, coordinator):
    from breakglass.audit.models import AuditEvent

    drill = drill_create(
        name="Nobody", owner=coordinator, kind="human", paths=[healthy_path], participant_count=2
    )

    assert drill_schedule_fire(drill_id=drill.pk) == []
    event = AuditEvent.objects.get(action="drill.schedule_blocked")
    assert "No eligible participants" in event.data["reason"]


def test_a_schedule_left_behind_by_a_deleted_drill_does_nothing():
    assert drill_schedule_fire(drill_id=999999) == []
