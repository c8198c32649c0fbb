"""grant_request: what a responder may ask for, and the clear refusal of everything else."""

import pytest

from breakglass.access.errors import GrantError
from breakglass.access.grants import grant_request, path_resolve
from breakglass.access.models import BackupPath, Grant
from breakglass.audit.models import AuditEvent
from breakglass.outbox.models import OutboxMessage
from tests.breakglass.conftest import path_make


def ask(path, requester, **overrides):
    fields = {"reason": "SSO admin console is down", "incident_ref": "INC-2026-0042"}
    fields.update(overrides)
    return grant_request(path=path, requester=requester, **fields)


def test_a_request_is_pending_with_the_path_defaults(sso_path, responder):
    grant = ask(sso_path, responder)
    assert grant.state == Grant.State.PENDING
    assert grant.scopes == ["admin", "read"]
    assert grant.lifetime_minutes == 60
    assert grant.incident_ref == "INC-2026-0042"
    assert grant.credential_encrypted is None
    assert len(grant.jti) == 32
    assert AuditEvent.objects.filter(action="grant.requested", object_id=str(grant.pk)).exists()


def test_each_request_gets_its_own_jti(sso_path, responder):
    assert ask(sso_path, responder).jti != ask(sso_path, responder).jti


def test_approvers_are_asked_by_email_through_the_outbox(
    sso_path, responder, approver, second_approver
):
    grant = ask(sso_path, responder)
    asked = OutboxMessage.objects.filter(source=f"breakglass.grant:{grant.pk}", kind="email")
    assert sorted(asked.values_list("recipient", flat=True)) == [
        "alex-approver@example.test",
        "bea-approver@example.test",
    ]


def test_unknown_path_is_a_clear_error_that_lists_the_active_paths(db):
    with pytest.raises(GrantError, match=r"^Unknown path 'nope'. The paths: none yet.$"):
        path_resolve(slug="nope")
    path_make("sso-backup")
    path_make("dns-backup")
    path_make("old-backup")
    BackupPath.objects.filter(slug="old-backup").update(is_active=False)
    with pytest.raises(GrantError) as refused:
        path_resolve(slug="nope")
    assert str(refused.value) == "Unknown path 'nope'. The paths: dns-backup, sso-backup."


@pytest.mark.parametrize(
    ("overrides", "code", "message"),
    [
        ({"scopes": ["root"]}, "scope_outside_path", "Scope root is outside this path"),
        ({"lifetime_minutes": 61}, "lifetime_over_maximum", "over this path's maximum of 60"),
        ({"lifetime_minutes": 0}, "bad_lifetime", "at least one minute"),
        ({"reason": "   "}, "missing_reason", "A reason is required"),
    ],
)
def test_bad_requests_are_refused_audited_and_leave_nothing(
    sso_path, responder, overrides, code, message
):
    with pytest.raises(GrantError, match=message) as caught:
        ask(sso_path, responder, **overrides)
    assert caught.value.code == code
    assert not Grant.objects.exists()
    assert not OutboxMessage.objects.exists()
    refusal = AuditEvent.objects.get(action="grant.request_refused")
    assert refusal.data["code"] == code


def test_an_ineligible_requester_is_refused_and_audited(sso_path, outsider):
    with pytest.raises(GrantError, match="not an eligible responder"):
        ask(sso_path, outsider)
    assert not Grant.objects.exists()
    assert AuditEvent.objects.get(action="grant.request_refused").actor == outsider


def test_scopes_within_the_path_are_kept(sso_path, responder):
    assert ask(sso_path, responder, scopes=["read"]).scopes == ["read"]


def test_a_request_without_incident_is_allowed(sso_path, responder):
    assert ask(sso_path, responder, incident_ref="").incident_ref == ""


def test_ssh_paths_need_a_valid_public_key_up_front(trust, responder, ssh_public_key):
    path = path_make("bastion-ssh", service="bastion", method="ssh-certificate", scopes=("login",))
    with pytest.raises(GrantError, match="paste your SSH public key"):
        ask(path, responder)
    with pytest.raises(GrantError, match="Not a valid OpenSSH public key"):
        ask(path, responder, ssh_public_key="ssh-ed25519 garbage")
    with pytest.raises(GrantError, match="That is a private key"):
        ask(path, responder, ssh_public_key="-----BEGIN OPENSSH PRIVATE KEY-----")
    assert not Grant.objects.exists()
    assert ask(path, responder, ssh_public_key=ssh_public_key).ssh_public_key == ssh_public_key


def _rsa_line(bits: int) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (lambda: _rsa_line(1024), "RSA keys must have at least 2048 bits"),
        (lambda: "ssh-ed25519-cert-v01@openssh.com AAAA x", "That is a certificate"),
        (lambda: "ssh-ed25519 AAAA\nssh-ed25519 AAAA", "exactly one OpenSSH public key line"),
    ],
)
def test_a_key_the_ca_would_not_sign_is_refused_at_request_time(trust, responder, key, message):
    """One rule (core.ssh.ssh_public_key_parse) at request and at issue time: an RSA-1024
    key used to be accepted and approved, then the k-th approval failed with 503."""
    path = path_make("bastion-ssh", service="bastion", method="ssh-certificate", scopes=("login",))
    with pytest.raises(GrantError, match=message) as caught:
        ask(path, responder, ssh_public_key=key())
    assert caught.value.code == "bad_ssh_public_key"
    assert not Grant.objects.exists()
