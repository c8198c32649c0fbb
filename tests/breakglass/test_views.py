"""The access console through Django's test client (the browser tests drive the flows)."""

import pytest

from breakglass.access.grants import grant_request, grant_self_issue
from breakglass.access.models import Grant
from devkit.factories import verified_client
from tests.breakglass.conftest import path_make


def test_the_registry_shows_the_dependency_chain_as_a_red_badge(trust, responder):
    path_make()
    path_make("sso-via-chat", requires=("chat",))
    from tests.breakglass.conftest import service_make

    service_make("chat", depends_on=("sso",))
    page = verified_client(responder).get("/access/").content.decode()
    assert 'class="badge danger" title="circular dependency">circular: sso -> chat -> sso' in page
    assert "1 backup path depends on what it protects" in page


def test_the_console_needs_an_otp_verified_session(sso_path, responder, client):
    client.force_login(responder)
    response = client.get("/access/")
    assert response.status_code == 302 and "/accounts/verify/" in response["Location"]


def test_a_request_from_the_console_creates_a_pending_grant(sso_path, responder):
    response = verified_client(responder).post(
        "/access/paths/sso-backup/request/",
        {"reason": "IdP down", "incident_ref": "INC-9", "scopes": ["read"], "lifetime_minutes": 30},
    )
    grant = Grant.objects.get()
    assert response["Location"] == f"/access/grants/{grant.pk}/"
    assert (grant.scopes, grant.lifetime_minutes, grant.state) == (["read"], 30, "pending")


def test_a_refused_request_shows_the_reason_and_creates_nothing(sso_path, responder):
    response = verified_client(responder).post(
        "/access/paths/sso-backup/request/", {"reason": "", "lifetime_minutes": 30}
    )
    assert response.status_code == 200
    assert "A reason is required" in response.content.decode()
    assert not Grant.objects.exists()


def test_an_unknown_path_is_404(trust, responder):
    assert verified_client(responder).get("/access/paths/nope/request/").status_code == 404


def test_the_approve_page_shows_who_why_and_the_missing_incident(sso_path, responder, approver):
    grant = grant_request(path=sso_path, requester=responder, reason="IdP is down for everyone")
    page = verified_client(approver).get(f"/access/grants/{grant.pk}/approve/").content.decode()
    assert "rita-responder" in page
    assert "IdP is down for everyone" in page
    assert "NO INCIDENT REFERENCE" in page


def test_approving_needs_a_fresh_otp(sso_path, responder, approver):
    grant = grant_request(path=sso_path, requester=responder, reason="x")
    response = verified_client(approver, sudo=False).post(f"/access/grants/{grant.pk}/approve/")
    assert response.status_code == 302 and "/accounts/sudo/" in response["Location"]
    assert not grant.approvals.exists()


def test_self_approval_from_the_console_is_refused_with_a_message(trust):
    from devkit.factories import user_make

    both = user_make("pat-both", role_names=("responder", "approver"))
    grant = grant_request(path=path_make(), requester=both, reason="x")
    response = verified_client(both).post(f"/access/grants/{grant.pk}/approve/", follow=True)
    assert "You cannot approve your own request." in response.content.decode()
    assert not grant.approvals.exists()


def test_only_the_grantee_sees_the_credential(sso_path, responder, approver):
    grant, token = grant_self_issue(
        path=sso_path, requester=responder, reason="x", confirmation="sso-backup"
    )
    assert token in verified_client(responder).get(f"/access/grants/{grant.pk}/").content.decode()
    assert token in verified_client(responder).get("/access/mine/").content.decode()
    approver_view = verified_client(approver).get(f"/access/grants/{grant.pk}/").content.decode()
    assert grant.jti in approver_view and token not in approver_view


def test_outsiders_cannot_see_other_peoples_grants(sso_path, responder, outsider):
    grant = grant_request(path=sso_path, requester=responder, reason="x")
    assert verified_client(outsider).get(f"/access/grants/{grant.pk}/").status_code == 404


def test_breaking_the_glass_needs_a_fresh_otp(sso_path, responder):
    response = verified_client(responder, sudo=False).get("/access/paths/sso-backup/break-glass/")
    assert "/accounts/sudo/" in response["Location"]


def test_breaking_the_glass_with_the_wrong_confirmation_is_refused(sso_path, responder):
    response = verified_client(responder).post(
        "/access/paths/sso-backup/break-glass/",
        {"reason": "x", "lifetime_minutes": 10, "confirmation": "sso"},
    )
    assert "type the path&#x27;s slug exactly: sso-backup" in response.content.decode()
    assert not Grant.objects.exists()


def test_revoke_and_review_from_the_console(
    sso_path, responder, approver, django_capture_on_commit_callbacks
):
    grant, _ = grant_self_issue(
        path=sso_path, requester=responder, reason="x", confirmation="sso-backup"
    )
    client = verified_client(approver)
    assert f"/access/grants/{grant.pk}/" in client.get("/access/reviews/").content.decode()
    client.post(f"/access/grants/{grant.pk}/review/", {"notes": "justified"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/access/grants/{grant.pk}/revoke/", {"reason": "done"})
    grant.refresh_from_db()
    assert grant.reviewed_by == approver and grant.state == Grant.State.REVOKED


@pytest.mark.parametrize(
    "url",
    [
        "/access/",
        "/access/mine/",
        "/access/approvals/",
        "/access/active/",
        "/access/reviews/",
        "/access/api-tokens/",
    ],
)
def test_every_console_page_renders(sso_path, responder, approver, url):
    grant_self_issue(path=sso_path, requester=responder, reason="x", confirmation="sso-backup")
    grant_request(path=sso_path, requester=responder, reason="y")
    assert verified_client(approver).get(url).status_code == 200


def test_the_ssh_grant_page_shows_the_certificate_the_login_and_the_command(
    trust, responder, approver, ssh_public_key
):
    path = path_make("bastion-ssh", service="bastion", method="ssh-certificate")
    path.ssh_host = "bastion.example.org"
    path.ssh_source_addresses = ["10.0.0.0/8"]
    path.save()
    grant, certificate = grant_self_issue(
        path=path,
        requester=responder,
        reason="x",
        confirmation="bastion-ssh",
        ssh_public_key=ssh_public_key,
    )
    page = verified_client(responder).get(f"/access/grants/{grant.pk}/").content.decode()
    assert certificate in page  # the whole certificate, one line
    assert '<code id="ssh-login">breakglass</code> on <code>bastion.example.org</code>' in page
    assert (
        "ssh -i ~/.ssh/id_ed25519 -o CertificateFile=~/.ssh/bastion-ssh-cert.pub "
        "breakglass@bastion.example.org</textarea>"
    ) in page
    assert "Save it as <code>~/.ssh/bastion-ssh-cert.pub</code>" in page
    assert "<code>bg-bastion-ssh</code>" in page
    assert f"<code>{grant.pk}</code>, <code>breakglass grant {grant.pk} " in page
    assert "<code>source-address=10.0.0.0/8</code>" in page
    assert "permit-pty" in page
    approver_view = verified_client(approver).get(f"/access/grants/{grant.pk}/").content.decode()
    assert certificate not in approver_view and "ssh-command" not in approver_view
