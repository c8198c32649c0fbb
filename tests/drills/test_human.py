"""Human drills are a side door around approvals, kept narrow: one short-lived credential
per participant per run, approvers told, and nothing left valid when the run ends."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from breakglass.access.models import Grant
from breakglass.outbox.models import OutboxMessage
from drills.definitions import drill_create
from drills.engine import drill_runs_reap
from drills.human import human_run_create, human_run_finish
from drills.killswitch import killswitch_engage
from drills.models import DrillParticipant
from tests.drills.conftest import responders

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("autocommit_callbacks")]


@pytest.fixture
def human_run(healthy_path, coordinator):
    """A human drill of sso-backup (2 approvals needed for real access) with rita and ravi."""
    rita, ravi = responders("rita", "ravi")
    drill = drill_create(name="Human", owner=coordinator, kind="human", paths=[healthy_path])
    return human_run_create(drill=drill, path=healthy_path, participants=[rita, ravi])


def _participate(as_user, run, username: str, *, times: int = 1):
    user = run.participants.get(user__username=username).user
    client = as_user(user)
    url = f"/drills/runs/{run.pk}/participate/"
    client.post(url, {"action": "start"})
    return [client.post(url, {"action": "credential"}) for _ in range(times)]


def _published_revoked_jtis(settings) -> set[str]:
    bundle = json.loads((settings.TRUST_PUBLISH_DIR / "bundle.json").read_text())
    return {entry["jti"] for entry in bundle["payload"]["revoked_jti"]}


def test_a_participant_asking_four_times_gets_one_credential(as_user, human_run):
    first, *again = _participate(as_user, human_run, "rita", times=4)

    assert b'id="credential"' in first.content
    for response in again:
        assert b'id="credential"' not in response.content
        assert b"already received this drill&#x27;s credential" in response.content
    assert Grant.objects.filter(drill=True, requester__username="rita").count() == 1
    assert DrillParticipant.objects.get(run=human_run, user__username="rita").state == "verified"


def test_the_database_refuses_a_second_drill_credential_for_the_same_participant(
    as_user, human_run
):
    _participate(as_user, human_run, "rita")
    grant = Grant.objects.get(drill=True, requester__username="rita")

    with pytest.raises(IntegrityError), transaction.atomic():
        Grant.objects.create(
            path=grant.path,
            requester=grant.requester,
            reason="racing second request",
            lifetime_minutes=1,
            drill=True,
            drill_ref=human_run.drill_ref,
            jti="f" * 32,
            request_expires_at=timezone.now(),
        )


def test_drill_credentials_live_no_longer_than_the_setting(as_user, human_run, settings):
    settings.DRILLS_CREDENTIAL_MINUTES = 3
    _participate(as_user, human_run, "rita")

    grant = Grant.objects.get(drill=True, requester__username="rita")
    assert grant.lifetime_minutes == 3
    assert grant.expires_at - grant.issued_at == timedelta(minutes=3)


def test_the_approvers_and_security_contacts_are_told_of_a_human_drill_credential(
    as_user, human_run, settings, approvers
):
    settings.BREAKGLASS_SECURITY_CONTACTS = ["security@example.test"]
    _participate(as_user, human_run, "rita")
    grant = Grant.objects.get(drill=True, requester__username="rita")

    mails = OutboxMessage.objects.filter(source=f"breakglass.grant:{grant.pk}", kind="email")
    told = {message.recipient for message in mails}
    assert told == {user.email for user in approvers} | {"security@example.test"}
    subject = mails.first().payload["subject"]
    assert subject == "[Breakglass] DRILL credential (no approval): rita on sso-backup"
    assert grant.jti in mails.first().payload["body"]


def test_finishing_a_human_run_revokes_every_credential_it_issued(
    as_user, human_run, coordinator, settings
):
    _participate(as_user, human_run, "rita")
    _participate(as_user, human_run, "ravi")

    human_run_finish(run=human_run, actor=coordinator)

    grants = Grant.objects.filter(drill=True, drill_ref=human_run.drill_ref)
    assert grants.count() == 2
    assert set(grants.values_list("state", flat=True)) == {"revoked"}
    assert set(grants.values_list("jti", flat=True)) <= _published_revoked_jtis(settings)


def test_an_abandoned_human_run_is_closed_by_the_reaper_with_its_credentials_revoked(
    as_user, human_run, settings
):
    _participate(as_user, human_run, "rita")

    later = human_run.scheduled_for + timedelta(hours=settings.DRILLS_HUMAN_RUN_ABANDON_HOURS + 1)
    with time_machine.travel(later, tick=False):
        result = drill_runs_reap()

    human_run.refresh_from_db()
    assert result["abandoned"] == 1
    assert human_run.state == "aborted" and "Abandoned" in human_run.failure_reason
    assert Grant.objects.get(drill=True, requester__username="rita").state == "revoked"
    assert DrillParticipant.objects.get(run=human_run, user__username="ravi").state == "no-show"


def test_a_run_too_young_to_be_abandoned_is_left_alone(as_user, human_run):
    _participate(as_user, human_run, "rita")

    assert drill_runs_reap()["abandoned"] == 0
    assert Grant.objects.get(drill=True, requester__username="rita").state == "issued"


def test_the_kill_switch_revokes_the_credentials_of_the_human_runs_it_aborts(
    as_user, human_run, coordinator
):
    _participate(as_user, human_run, "rita")

    killswitch_engage(actor=coordinator, reason="real incident")

    human_run.refresh_from_db()
    assert human_run.state == "aborted"
    assert Grant.objects.get(drill=True, requester__username="rita").state == "revoked"


def test_the_reaper_revokes_a_credential_left_behind_by_an_ended_run(as_user, human_run):
    from drills.models import DrillRun

    _participate(as_user, human_run, "rita")
    # A clean-up that failed: the run is recorded as ended, its credential still valid.
    DrillRun.objects.filter(pk=human_run.pk).update(state="failed", finished_at=timezone.now())

    assert drill_runs_reap()["credentials_revoked"] == 1
    assert Grant.objects.get(drill=True, requester__username="rita").state == "revoked"


def test_a_failed_verification_revokes_the_unshown_credential_and_mints_no_other(
    as_user, human_run, monkeypatch
):
    from drills import steps

    monkeypatch.setitem(steps.STEPS, "verify", lambda ctx: (False, {}, "bundle unreadable"))
    first, second = _participate(as_user, human_run, "rita", times=2)

    assert b"bundle unreadable" in first.content
    assert b"already received" in second.content
    grant = Grant.objects.get(drill=True, requester__username="rita")
    assert grant.state == "revoked"


RACER = """
import sys, time
from pathlib import Path

import django

django.setup()
from django.contrib.auth.models import User

from drills.errors import DrillError
from drills.human import participant_obtain_credential
from drills.models import DrillRun

run, user = DrillRun.objects.get(pk=int(sys.argv[1])), User.objects.get(username=sys.argv[2])
while not Path(sys.argv[3]).exists():
    time.sleep(0.01)
try:
    participant_obtain_credential(run=run, user=user)
    print("issued")
except DrillError as exc:
    print("refused:", exc)
"""


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_four_processes_asking_at_once_get_one_credential(settings, tmp_path, coordinator):
    """The race the service check alone would lose: four real processes, one participant,
    one moment. The participant row lock (and the constraint behind it) lets one through."""
    import os
    import subprocess
    import sys

    from breakglass.keys.services import keys_bootstrap
    from devkit.factories import user_make
    from devkit.workers import ROOT, test_database_url
    from drills.human import participant_start
    from tests.breakglass.conftest import path_make, service_make

    settings.TRUST_PUBLISH_DIR = tmp_path / "test-trust"  # where the racers' settings look
    keys_bootstrap()
    user_make("alex-approver", role_names=("approver",))
    user_make("bea-approver", role_names=("approver",))
    service_make("dns")
    path = path_make("sso-backup", service="sso", requires=("dns",))
    [rita] = responders("rita")
    drill = drill_create(name="Human", owner=coordinator, kind="human", paths=[path])
    run = human_run_create(drill=drill, path=path, participants=[rita])
    participant_start(run=run, user=rita)

    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=test_database_url(),
        BREAKGLASS_DATA_DIR=str(tmp_path),
        BREAKGLASS_KEK=settings.BREAKGLASS_KEK,
        BREAKGLASS_ISSUER=settings.BREAKGLASS_ISSUER,
        PYTHONPATH=str(ROOT),
    )
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(run.pk), "rita", str(go)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    go.touch()
    outcomes = [racer.communicate(timeout=120) for racer in racers]

    answers = sorted(out.strip() for out, _err in outcomes)
    refused = "refused: You already received this drill's credential: one per participant per run."
    assert answers == ["issued", refused, refused, refused], outcomes
    assert Grant.objects.filter(drill=True, drill_ref=run.drill_ref).count() == 1
