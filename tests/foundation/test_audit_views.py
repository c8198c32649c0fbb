"""/audit/: administrators, approvers, incident commanders and staff see the log, its chain status and a download."""

import json

import pytest

from breakglass.audit.services import audit_record
from breakglass.core.hashchain import read_export, verify_chain

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_checkpoint_file(settings, tmp_path):
    """Each test gets its own (empty) record of chain heads."""
    settings.BREAKGLASS_AUDIT_CHECKPOINT_FILE = tmp_path / "checkpoints.jsonl"


@pytest.fixture
def some_events(responder, approver, administrator):
    from tests.foundation.test_audit_verify import audit_log_emptied

    audit_log_emptied()
    audit_record(
        action="grant.requested", actor=responder, object_type="breakglass.grant", object_id=7
    )
    audit_record(
        action="grant.approved", actor=approver, object_type="breakglass.grant", object_id=7
    )
    audit_record(action="drill.started", actor=approver, object_type="drills.drillrun", object_id=3)


def test_administrators_see_recent_events_and_an_intact_chain(as_user, administrator, some_events):
    response = as_user(administrator).get("/audit/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "intact" in body
    assert "grant.requested" in body and "drill.started" in body


def test_staff_without_the_role_may_read_the_log(as_user, some_events):
    from devkit.factories import user_make

    staff = user_make("sam-staff", is_staff=True)
    assert as_user(staff).get("/audit/").status_code == 200


def test_people_without_the_role_are_refused(as_user, responder, outsider):
    assert as_user(responder).get("/audit/").status_code == 403
    assert as_user(outsider).get("/audit/export.jsonl").status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get("/audit/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_events_can_be_filtered_by_action_actor_and_object(as_user, administrator, some_events):
    client = as_user(administrator)
    by_action = client.get("/audit/", {"action": "grant."}).context["events"]
    assert {e.action for e in by_action} == {"grant.requested", "grant.approved"}
    by_actor = client.get("/audit/", {"actor": "rita-responder"}).context["events"]
    assert [e.action for e in by_actor] == ["grant.requested"]
    by_object = client.get("/audit/", {"object": "drills.drillrun:3"}).context["events"]
    assert [e.action for e in by_object] == ["drill.started"]


def test_a_broken_chain_is_shown_as_broken(as_user, administrator, some_events):
    from breakglass.audit.models import AuditEvent
    from tests.foundation.test_audit_verify import owner_tampering

    with owner_tampering():
        AuditEvent.objects.filter(seq=2).update(actor_label="mallory")
    body = as_user(administrator).get("/audit/").content.decode()
    assert "Chain broken" in body and "event #2" in body


def test_the_download_is_a_verifiable_export_and_is_itself_audited(
    as_user, administrator, some_events
):
    response = as_user(administrator).get("/audit/export.jsonl")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    lines = b"".join(response.streaming_content).splitlines()
    assert verify_chain(read_export(lines)) == 4
    assert json.loads(lines[-1])["record"]["action"] == "audit.exported"
