"""Drill services check the actor's role, as access services do; the admin cannot go
around them."""

import pytest
from django.utils import timezone

from breakglass.audit.models import AuditEvent
from drills.engine import drill_run_create
from drills.errors import DrillNotAllowed
from drills.killswitch import blackout_create, killswitch_engage, killswitch_release
from drills.models import DrillRun, KillSwitchEvent
from drills.selectors import killswitch_state


def test_a_responder_cannot_engage_the_kill_switch_and_nothing_changes(healthy_path, responder):
    run = drill_run_create(path=healthy_path, enqueue=False)
    with pytest.raises(DrillNotAllowed, match="drill coordinators and incident commanders"):
        killswitch_engage(actor=responder, reason="curious")
    assert not KillSwitchEvent.objects.exists()
    assert DrillRun.objects.get(pk=run.pk).state == DrillRun.State.PENDING
    assert not AuditEvent.objects.filter(action="drill.killswitch_engaged").exists()


def test_an_incident_commander_may_engage_but_not_release(healthy_path, commander):
    run = drill_run_create(path=healthy_path, enqueue=False)
    killswitch_engage(actor=commander, reason="real SEV1 in progress")
    assert killswitch_state()[0] is True
    assert DrillRun.objects.get(pk=run.pk).state == DrillRun.State.ABORTED
    with pytest.raises(DrillNotAllowed, match="release"):
        killswitch_release(actor=commander, reason="done")
    assert killswitch_state()[0] is True


@pytest.mark.parametrize("who", ["responder", "commander", "outsider"])
def test_only_coordinators_start_runs_and_black_out(request, healthy_path, who):
    person = request.getfixturevalue(who)
    now = timezone.now()
    with pytest.raises(DrillNotAllowed):
        drill_run_create(path=healthy_path, actor=person, enqueue=False)
    with pytest.raises(DrillNotAllowed):
        blackout_create(
            starts_at=now, ends_at=now + timezone.timedelta(hours=1), reason="x", actor=person
        )
    assert not DrillRun.objects.exists()


def test_the_console_shows_an_incident_commander_the_engage_button(as_user, commander, db):
    page = as_user(commander).get("/drills/").content.decode()
    assert "Engage kill switch" in page
    assert "Add blackout" not in page


def test_a_refused_kill_switch_post_is_a_403_page_with_the_reason(as_user, responder, db):
    response = as_user(responder).post(
        "/drills/killswitch/", {"action": "engage", "reason": "curious"}
    )
    assert response.status_code == 403
    assert b"incident commanders can engage the kill switch" in response.content
    assert not KillSwitchEvent.objects.exists()


@pytest.mark.parametrize("model", ["killswitchevent", "blackoutwindow", "drillrun", "gameday"])
def test_the_admin_cannot_add_or_change_what_services_own(as_user, administrator, model):
    client = as_user(administrator)
    assert client.get(f"/admin/drills/{model}/").status_code == 200
    assert client.get(f"/admin/drills/{model}/add/").status_code == 403
    response = client.post(f"/admin/drills/{model}/add/", {"engaged": "on", "reason": "x"})
    assert response.status_code == 403
    assert not KillSwitchEvent.objects.exists()
