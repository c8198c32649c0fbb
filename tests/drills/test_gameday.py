"""Game days fan out over people and paths with bounded concurrency and lose nothing."""

from __future__ import annotations

import pytest

from drills.engine import drill_run_execute
from drills.errors import DrillError
from drills.gameday import gameday_pump, gameday_start
from drills.models import DrillRun
from tests.drills.conftest import responders

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("autocommit_callbacks")]


def test_a_game_day_runs_every_person_on_every_path_within_its_concurrency(
    healthy_path, ssh_path, coordinator, monkeypatch
):
    queued: list[int] = []
    monkeypatch.setattr(
        "drills.engine.runs_enqueue", lambda ids, countdown=None: queued.extend(ids)
    )
    people = responders("p1", "p2", "p3")

    game_day = gameday_start(
        name="GD", participants=people, paths=[healthy_path, ssh_path], concurrency=2
    )
    assert len(queued) == 2
    while queued:
        run_id = queued.pop(0)
        in_flight = DrillRun.objects.filter(
            game_day=game_day, queued_at__isnull=False, state__in=["pending", "running"]
        ).count()
        assert in_flight <= 2
        drill_run_execute(run_id=run_id, sync=True)  # finishing pumps the next one

    game_day.refresh_from_db()
    runs = DrillRun.objects.filter(game_day=game_day)
    assert runs.count() == 6 and set(runs.values_list("state", flat=True)) == {"passed"}
    assert set(runs.values_list("participant__username", flat=True)) == {"p1", "p2", "p3"}
    assert game_day.finished_at is not None
    assert gameday_pump(game_day_id=game_day.pk) == 0


def test_a_game_day_needs_people_and_paths(healthy_path):
    with pytest.raises(DrillError, match="at least one participant"):
        gameday_start(name="Empty", participants=[], paths=[healthy_path])
