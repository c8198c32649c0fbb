"""grant_self_issue: breaking the glass is immediate, loud, and reviewed afterwards."""

import pytest

from breakglass.access.credentials import grant_issue_drill
from breakglass.access.errors import GrantError
from breakglass.access.grants import grant_approve, grant_request, grant_self_issue
from breakglass.access.lifecycle import grant_review_close
from breakglass.access.models import Grant
from breakglass.audit.models import AuditEvent
from breakglass.outbox.models import OutboxMessage
from tests.breakglass.conftest import path_make


def break_glass(path, requester, **overrides):
    fields = {"reason": "SSO down, nobody can log in", "confirmation": path.slug}
    fields.update(overrides)
    return grant_self_issue(path=path, requester=requester, **fields)


def test_breaking_the_glass_issues_at_once_and_requires_review(sso_path, responder):
    grant, token = break_glass(sso_path, responder)
    assert grant.state == Grant.State.ISSUED
    assert grant.emergency and grant.review_required and grant.review_open
    assert token.count(".") == 2
    assert AuditEvent.objects.filter(action="grant.self_issued", object_id=str(grant.pk)).exists()


def test_every_approver_and_the_security_contacts_are_notified(
    sso_path, responder, approver, second_approver
):
    grant, _ = break_glass(sso_path, responder)
    messages = OutboxMessage.objects.filter(source=f"breakglass.grant:{grant.pk}")
    assert sorted(messages.values_list("recipient", flat=True)) == [
        "alex-approver@example.test",
        "bea-approver@example.test",
        "security@example.test",
    ]
    subject = messages.first().payload["subject"]
    assert subject == "[Breakglass] EMERGENCY self-issue: rita-responder on sso-backup"
    assert "Incident: NONE GIVEN" in messages.first().payload["body"]


def test_the_typed_confirmation_must_match_the_path(sso_path, responder):
    with pytest.raises(GrantError, match="type the path's slug exactly: sso-backup"):
        break_glass(sso_path, responder, confirmation="yes")
    assert not Grant.objects.exists()
    assert (
        AuditEvent.objects.get(action="grant.self_issue_refused").data["code"]
        == "confirmation_mismatch"
    )


def test_paths_without_self_issue_refuse_it(trust, responder):
    path = path_make(allow_self_issue=False)
    with pytest.raises(GrantError, match="does not allow emergency self-issue"):
        break_glass(path, responder)
    assert not Grant.objects.exists()


def test_the_same_persons_next_emergency_issue_waits_for_the_review(sso_path, responder, approver):
    first, _ = break_glass(sso_path, responder)
    with pytest.raises(
        GrantError, match=f"emergency grant #{first.pk} .* waiting for its post-use review"
    ):
        break_glass(sso_path, responder)
    assert Grant.objects.count() == 1
    grant_review_close(grant=first, reviewer=approver, notes="Used to restore the IdP; justified.")
    second, _ = break_glass(sso_path, responder)
    assert second.state == Grant.State.ISSUED


def test_an_open_review_does_not_block_other_people_or_other_paths(sso_path, responder, commander):
    break_glass(sso_path, responder)
    other = path_make("dns-token", service="dns")
    assert break_glass(other, responder)[0].state == Grant.State.ISSUED
    assert break_glass(sso_path, commander_as_responder(commander))[0].state == Grant.State.ISSUED


def commander_as_responder(user):
    from django.contrib.auth.models import Group

    user.groups.add(Group.objects.get(name="responder"))
    return user


def test_an_open_review_still_allows_an_approved_request(
    sso_path, responder, approver, second_approver
):
    break_glass(sso_path, responder)
    grant = grant_request(path=sso_path, requester=responder, reason="follow-up work")
    grant_approve(grant=grant, approver=approver)
    assert grant_approve(grant=grant, approver=second_approver).state == Grant.State.ISSUED


def test_the_grantee_cannot_review_their_own_emergency_access(sso_path, responder):
    grant, _ = break_glass(sso_path, responder)
    with pytest.raises(GrantError, match="cannot review your own"):
        grant_review_close(grant=grant, reviewer=responder, notes="fine")
    grant.refresh_from_db()
    assert grant.review_open


def test_a_review_needs_notes_and_an_approver(sso_path, responder, approver, outsider):
    grant, _ = break_glass(sso_path, responder)
    with pytest.raises(GrantError, match="Write review notes"):
        grant_review_close(grant=grant, reviewer=approver, notes=" ")
    with pytest.raises(GrantError, match="Only approvers"):
        grant_review_close(grant=grant, reviewer=outsider, notes="ok")
    grant_review_close(grant=grant, reviewer=approver, notes="ok")
    with pytest.raises(GrantError, match="no open review"):
        grant_review_close(grant=grant, reviewer=approver, notes="again")


def test_drill_grants_notify_the_drill_sink_not_people(sso_path):
    grant, token = grant_issue_drill(path=sso_path, drill_ref="DRILL-7")
    assert grant.drill and not grant.emergency and grant.state == Grant.State.ISSUED
    assert grant.lifetime_minutes == 5
    [message] = OutboxMessage.objects.filter(source=f"breakglass.grant:{grant.pk}")
    assert message.kind == "drill_sink"
    assert message.payload["drill_ref"] == "DRILL-7"
    assert message.payload["jti"] == grant.jti
    assert token.count(".") == 2


def test_drill_grants_on_ssh_paths_get_a_certificate_for_an_ephemeral_key(trust):
    path = path_make("bastion-ssh", method="ssh-certificate", scopes=("login",))
    grant, certificate = grant_issue_drill(path=path, drill_ref="DRILL-8", lifetime_minutes=500)
    assert certificate.startswith("ssh-ed25519-cert-v01@openssh.com ")
    assert grant.lifetime_minutes == 5  # capped at DRILLS_CREDENTIAL_MINUTES
