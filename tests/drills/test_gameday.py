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
        "drills.engine.runs_enqueue", lambda ids, countdown=None, batch=1: queued.extend(ids)
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


def test_a_batch_of_game_day_runs_is_re_sealed_by_one_bundle(
    healthy_path, ssh_path, coordinator, monkeypatch, settings
):
    from breakglass.keys.models import TrustBundle
    from drills.engine import drill_runs_execute

    settings.DRILLS_GAMEDAY_BATCH = 3
    queued: list[tuple[list[int], int]] = []
    monkeypatch.setattr(
        "drills.engine.runs_enqueue",
        lambda ids, countdown=None, batch=1: queued.append((list(ids), batch)),
    )
    people = responders("p1", "p2", "p3")
    game_day = gameday_start(
        name="GD", participants=people, paths=[healthy_path, ssh_path], concurrency=3
    )
    [(first_batch, batch)] = queued
    assert (len(first_batch), batch) == (3, 3)
    bundles_before = TrustBundle.objects.count()

    runs = drill_runs_execute(run_ids=first_batch)

    assert [run.state for run in runs] == ["passed"] * 3, [run.failure_reason for run in runs]
    assert TrustBundle.objects.count() == bundles_before + 1  # one bundle for three re-seals
    reseals = [run.steps.get(name="reseal").evidence for run in runs]
    assert {evidence["bundle_version"] for evidence in reseals} == {bundles_before + 1}
    assert len(queued) == 2 and len(queued[1][0]) == 3  # the batch's end freed three slots
    assert game_day.runs.filter(state="pending").count() == 3


def test_slots_are_filled_in_whole_batches_while_others_are_in_flight(
    healthy_path, ssh_path, coordinator, monkeypatch, settings
):
    settings.DRILLS_GAMEDAY_BATCH = 2
    queued: list[list[int]] = []
    monkeypatch.setattr(
        "drills.engine.runs_enqueue",
        lambda ids, countdown=None, batch=1: queued.append(list(ids)),
    )
    people = responders("p1", "p2", "p3")
    game_day = gameday_start(
        name="GD", participants=people, paths=[healthy_path, ssh_path], concurrency=4
    )
    assert [len(ids) for ids in queued] == [4]  # two batches of two

    drill_run_execute(run_id=queued[0][0], sync=True)  # one slot free: half a batch
    assert [len(ids) for ids in queued] == [4]
    drill_run_execute(run_id=queued[0][1], sync=True)  # a whole batch free
    assert [len(ids) for ids in queued] == [4, 2]
    assert gameday_pump(game_day_id=game_day.pk) == 0


def test_a_run_resumed_after_its_revocation_finds_it_revoked_and_checks_the_bundle(
    healthy_path,
):
    from breakglass.access.lifecycle import grant_revoke
    from breakglass.access.models import Grant
    from drills.steps import StepContext, step_run

    run = DrillRun.objects.get(pk=drill_run_create_for(healthy_path))
    ctx = StepContext(run=run, path=healthy_path)
    assert step_run("issue", ctx)[0]
    grant_revoke(grant=Grant.objects.get(pk=ctx.grant.pk), actor=None, reason="lost worker")

    ok, evidence, reason = step_run("reseal", ctx)  # the grant is revoked already
    assert ok, reason
    assert evidence["jti"] == ctx.grant.jti


def drill_run_create_for(path) -> int:
    from drills.engine import drill_run_create

    return drill_run_create(path=path, enqueue=False).pk


def test_a_game_day_needs_people_and_paths(healthy_path):
    with pytest.raises(DrillError, match="at least one participant"):
        gameday_start(name="Empty", participants=[], paths=[healthy_path])
