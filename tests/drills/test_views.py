"""The drills console: overview, kill switch, human drill mode, facilitator, report, board."""

from __future__ import annotations

import re

import pytest

from drills.definitions import drill_create
from drills.engine import drill_run_create
from drills.gameday import gameday_start
from drills.human import human_run_create
from drills.models import DrillParticipant, DrillRun, KillSwitchEvent
from tests.drills.conftest import responders

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("autocommit_callbacks")]


@pytest.fixture
def human_run(healthy_path, coordinator):
    rita, ravi = responders("rita", "ravi")
    drill = drill_create(name="Human", owner=coordinator, kind="human", paths=[healthy_path])
    return human_run_create(drill=drill, path=healthy_path, participants=[rita, ravi])


def test_the_overview_shows_coverage_and_the_kill_switch(as_user, coordinator, healthy_path):
    response = as_user(coordinator).get("/drills/")

    assert response.status_code == 200
    assert b"Kill switch off" in response.content
    assert b"Engage kill switch" in response.content


def test_a_coordinator_engages_the_kill_switch_with_a_reason(as_user, coordinator):
    response = as_user(coordinator).post(
        "/drills/killswitch/", {"action": "engage", "reason": "launch day"}, follow=True
    )

    assert KillSwitchEvent.objects.get().engaged is True
    assert b"Kill switch engaged" in response.content and b"launch day" in response.content


def test_someone_without_the_coordinator_role_cannot_touch_the_kill_switch(as_user, outsider):
    response = as_user(outsider).post("/drills/killswitch/", {"action": "engage", "reason": "x"})

    assert response.status_code == 403
    assert not KillSwitchEvent.objects.exists()


def test_a_kill_switch_without_a_reason_is_refused_with_a_message(as_user, coordinator):
    response = as_user(coordinator).post("/drills/killswitch/", {"action": "engage"}, follow=True)

    assert not KillSwitchEvent.objects.exists()
    assert b"Say why" in response.content


def test_a_participant_gets_a_verified_drill_credential_and_a_time(as_user, human_run):
    rita = human_run.participants.get(user__username="rita").user
    client = as_user(rita)

    page = client.get(f"/drills/runs/{human_run.pk}/participate/")
    assert b"DRILL MODE" in page.content and b'class="drillbar"' in page.content
    client.post(f"/drills/runs/{human_run.pk}/participate/", {"action": "start"})
    response = client.post(f"/drills/runs/{human_run.pk}/participate/", {"action": "credential"})

    participant = DrillParticipant.objects.get(run=human_run, user=rita)
    assert participant.state == "verified"
    assert participant.time_to_access_ms is not None
    assert b'id="credential"' in response.content


def test_the_credential_cannot_be_requested_before_start(as_user, human_run):
    rita = human_run.participants.get(user__username="rita").user

    response = as_user(rita).post(
        f"/drills/runs/{human_run.pk}/participate/", {"action": "credential"}, follow=True
    )

    assert b"Press Start first" in response.content
    assert DrillParticipant.objects.get(run=human_run, user=rita).state == "invited"


def test_someone_not_invited_cannot_participate(as_user, human_run, outsider):
    assert as_user(outsider).get(f"/drills/runs/{human_run.pk}/participate/").status_code == 404


def test_the_facilitator_marks_steps_and_finishing_records_no_shows(
    as_user, human_run, coordinator
):
    rita = human_run.participants.get(user__username="rita").user
    client = as_user(rita)
    client.post(f"/drills/runs/{human_run.pk}/participate/", {"action": "start"})
    client.post(f"/drills/runs/{human_run.pk}/participate/", {"action": "credential"})
    facilitator = as_user(coordinator)
    step = human_run.steps.get(name="approvers")

    facilitator.post(
        f"/drills/runs/{human_run.pk}/facilitate/",
        {"what": "step", "step": step.pk, "state": "passed", "reason": "two approvers came"},
    )
    facilitator.post(
        f"/drills/runs/{human_run.pk}/facilitate/", {"what": "finish", "notes": "went well"}
    )

    human_run.refresh_from_db()
    assert human_run.state == "passed"
    assert human_run.participants.get(user__username="ravi").state == "no-show"
    assert human_run.steps.get(name="approvers").marked_by == coordinator
    assert human_run.facilitator_notes == "went well"


def test_a_run_report_shows_each_step_and_the_reason(as_user, coordinator, flawed_path):
    from drills.engine import drill_run_execute

    run = drill_run_create(path=flawed_path, enqueue=False)
    drill_run_execute(run_id=run.pk, sync=True)

    response = as_user(coordinator).get(f"/drills/runs/{run.pk}/")

    assert b"sso -&gt; chat -&gt; sso" in response.content
    assert b"Drill credential issued through the real grant code" in response.content


def test_the_report_page_has_inline_svg_charts_and_no_inline_styles(as_user, coordinator):
    response = as_user(coordinator).get("/drills/report/?days=30")

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("<svg") == 3
    assert not re.search(r"\sstyle=", html) and "<style" not in html and "<script>" not in html


def test_the_report_downloads_as_json_and_csv(as_user, coordinator, healthy_path):
    client = as_user(coordinator)

    assert client.get("/drills/report/?format=json").json()["coverage"]["paths_total"] == 1
    assert client.get("/drills/report/?format=csv").content.startswith(b"path,service")


def test_the_game_day_board_and_its_progress_feed(as_user, coordinator, healthy_path, monkeypatch):
    monkeypatch.setattr("drills.engine.runs_enqueue", lambda ids, countdown=None, batch=1: None)
    people = responders("p1", "p2", "p3")
    game_day = gameday_start(
        name="GD", participants=people, paths=[healthy_path], concurrency=2, actor=coordinator
    )
    client = as_user(coordinator)

    page = client.get(f"/drills/gamedays/{game_day.pk}/")
    feed = client.get(f"/drills/gamedays/{game_day.pk}/progress.json").json()

    assert b"drills/board.js" in page.content and b"Reload" in page.content
    assert feed["total"] == 3 and feed["finished"] == 0
    # Bounded concurrency: only two runs were queued.
    assert DrillRun.objects.filter(game_day=game_day, queued_at__isnull=False).count() == 2
