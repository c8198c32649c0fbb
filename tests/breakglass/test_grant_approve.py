"""grant_approve: k distinct approvers, never the requester; the k-th issues exactly once."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from breakglass.access.credentials import grant_credential
from breakglass.access.errors import GrantError
from breakglass.access.grants import grant_approve, grant_request
from breakglass.access.models import Approval, Grant
from breakglass.audit.models import AuditEvent
from breakglass.outbox.models import OutboxMessage
from devkit.factories import user_make
from tests.breakglass.conftest import path_make


def ask(path, requester):
    return grant_request(path=path, requester=requester, reason="SSO is down", incident_ref="INC-1")


def test_one_approval_of_two_leaves_the_request_pending(sso_path, responder, approver):
    grant = grant_approve(grant=ask(sso_path, responder), approver=approver)
    assert grant.state == Grant.State.PENDING
    assert grant.credential_encrypted is None
    assert grant_credential(grant=grant, user=responder) is None


def test_the_kth_distinct_approval_issues_the_credential(
    sso_path, responder, approver, second_approver
):
    grant = ask(sso_path, responder)
    grant_approve(grant=grant, approver=approver)
    grant = grant_approve(grant=grant, approver=second_approver)
    assert grant.state == Grant.State.ISSUED
    assert grant.expires_at == grant.issued_at + timedelta(minutes=60)
    token = grant_credential(grant=grant, user=responder)
    assert token.count(".") == 2
    # Only the grantee ever sees it; at rest it is ciphertext.
    assert grant_credential(grant=grant, user=approver) is None
    assert token.encode() not in bytes(grant.credential_encrypted)
    assert AuditEvent.objects.filter(action="grant.issued", object_id=str(grant.pk)).count() == 1


def test_issue_notifies_approvers_and_security_contacts_through_the_outbox(
    sso_path, responder, approver, second_approver
):
    grant = ask(sso_path, responder)
    grant_approve(grant=grant, approver=approver)
    grant_approve(grant=grant, approver=second_approver)
    issued = OutboxMessage.objects.filter(
        source=f"breakglass.grant:{grant.pk}", idempotency_key__contains=":issued:"
    )
    assert sorted(issued.values_list("recipient", flat=True)) == [
        "alex-approver@example.test",
        "bea-approver@example.test",
        "security@example.test",
    ]
    assert all(message.kind == "email" for message in issued)
    assert "Approved by: alex-approver, bea-approver" in issued.first().payload["body"]


def test_self_approval_is_refused_audited_and_changes_nothing(trust, responder):
    both = user_make("pat-both", role_names=("responder", "approver"))
    path = path_make(approvals_required=1)
    grant = ask(path, both)
    with pytest.raises(GrantError, match="cannot approve your own request") as caught:
        grant_approve(grant=grant, approver=both)
    assert caught.value.code == "self_approval"
    assert not Approval.objects.exists()
    grant.refresh_from_db()
    assert grant.state == Grant.State.PENDING
    refusal = AuditEvent.objects.get(action="grant.approval_refused")
    assert refusal.actor == both
    assert refusal.data["code"] == "self_approval"


def test_approving_twice_is_refused(sso_path, responder, approver):
    grant = ask(sso_path, responder)
    grant_approve(grant=grant, approver=approver)
    with pytest.raises(GrantError, match="already approved"):
        grant_approve(grant=grant, approver=approver)
    assert Approval.objects.count() == 1
    assert Grant.objects.get().state == Grant.State.PENDING


def test_someone_outside_the_approver_group_cannot_approve(sso_path, responder, outsider):
    with pytest.raises(GrantError, match="not an approver"):
        grant_approve(grant=ask(sso_path, responder), approver=outsider)
    assert not Approval.objects.exists()


def test_approving_an_expired_request_is_refused_and_expires_it(sso_path, responder, approver):
    grant = ask(sso_path, responder)
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        with pytest.raises(GrantError, match="expired before it was approved"):
            grant_approve(grant=grant, approver=approver)
    grant.refresh_from_db()
    assert grant.state == Grant.State.EXPIRED
    assert not Approval.objects.exists()
    assert AuditEvent.objects.filter(action="grant.request_expired").count() == 1


def test_an_issued_grant_takes_no_more_approvals(trust, responder, approver, second_approver):
    path = path_make(approvals_required=1)
    grant = grant_approve(grant=ask(path, responder), approver=approver)
    with pytest.raises(GrantError, match="no longer waiting"):
        grant_approve(grant=grant, approver=second_approver)


def test_a_failed_issue_leaves_no_approval_behind(trust, responder, approver, ssh_public_key):
    # An SSH path whose CA was retired: the issue fails, and the approval rolls back with it.
    path = path_make(
        "bastion-ssh", method="ssh-certificate", scopes=("login",), approvals_required=1
    )
    key = ssh_public_key
    grant = grant_request(path=path, requester=responder, reason="bastion", ssh_public_key=key)
    path.ssh_ca.state = "retired"
    path.ssh_ca.save()
    with pytest.raises(GrantError, match="could not be issued"):
        grant_approve(grant=grant, approver=approver)
    grant.refresh_from_db()
    assert grant.state == Grant.State.PENDING
    assert not Approval.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_kth_approvals_issue_exactly_once(responder, approver, second_approver):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    from breakglass.keys.services import keys_bootstrap

    keys_bootstrap()
    path = path_make(approvals_required=1)
    grant = ask(path, responder)
    barrier = threading.Barrier(2)
    outcomes = []

    def approve(user):
        barrier.wait()
        try:
            grant_approve(grant=grant, approver=user)
            outcomes.append("ok")
        except GrantError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=approve, args=(user,)) for user in (approver, second_approver)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["not_pending", "ok"]
    assert Approval.objects.count() == 1
    assert AuditEvent.objects.filter(action="grant.issued").count() == 1
    assert Grant.objects.get().state == Grant.State.ISSUED
