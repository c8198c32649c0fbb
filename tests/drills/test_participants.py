"""Picking people for human drills spreads the knowledge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from drills.models import DrillParticipant, GameDay
from drills.seed import _run
from drills.selectors import gameday_participants_pick, participants_pick
from tests.drills.conftest import responders, team_with

pytestmark = pytest.mark.django_db


def test_people_who_never_exercised_the_path_come_first(healthy_path):
    rita, ravi = responders("rita", "ravi")
    recent = _run(healthy_path, days_ago=10, state="passed", tta=1000, kind="human")
    DrillParticipant.objects.create(
        run=recent, user=rita, state="verified", verified_at=timezone.now() - timedelta(days=10)
    )

    assert participants_pick(path=healthy_path, count=1) == [ravi]


def test_people_outside_the_owning_team_come_before_the_team(healthy_path):
    ann, bob = responders("ann", "bob")
    team_with("platform", ann)  # ann is on the team that owns SSO here

    assert participants_pick(path=healthy_path, count=2) == [bob, ann]


def test_an_exercise_older_than_90_days_counts_as_not_recent(healthy_path):
    ann, bob = responders("ann", "bob")
    for user, days in ((ann, 100), (bob, 20)):
        run = _run(healthy_path, days_ago=days, state="passed", tta=1000, kind="human")
        DrillParticipant.objects.create(
            run=run, user=user, state="verified", verified_at=timezone.now() - timedelta(days=days)
        )

    assert participants_pick(path=healthy_path, count=1) == [ann]


def test_people_without_a_confirmed_otp_device_are_not_eligible(healthy_path):
    ann, bob = responders("ann", "bob")
    TOTPDevice.objects.filter(user=ann).delete()

    assert participants_pick(path=healthy_path, count=5) == [bob]


def test_the_game_day_form_uses_the_picker_not_the_first_responders(
    healthy_path, as_user, coordinator
):
    ann, bob, cid = responders("ann", "bob", "cid")
    team_with("platform", ann)  # on the owning team: picked last
    TOTPDevice.objects.filter(user=bob).delete()  # cannot take part at all
    response = as_user(coordinator).post(
        "/drills/gamedays/",
        {"name": "Q3", "paths": [healthy_path.pk], "participants": 1, "concurrency": 1},
    )
    assert response.status_code == 302
    game_day = GameDay.objects.get()
    assert {run.participant for run in game_day.runs.all()} == {cid}


def test_a_game_day_over_several_paths_takes_people_from_each(healthy_path, ssh_path):
    ann, bob = responders("ann", "bob")
    picked = gameday_participants_pick(paths=[healthy_path, ssh_path], count=5)
    assert len(picked) == len(set(picked))
    assert {ann, bob} <= set(picked)
