"""Issued credentials checked by independent tools: PyJWT and jwcrypto against the
exported trust bundle's key, ssh-keygen for certificates; and revocation reaching the
next bundle."""

import json
import shutil
import subprocess
from datetime import timedelta

import jwt
import pytest
from jwcrypto import jwk as jw_jwk
from jwcrypto import jwt as jw_jwt

from breakglass.access.credentials import grant_credential
from breakglass.access.errors import GrantError
from breakglass.access.grants import grant_approve, grant_request, grant_self_issue
from breakglass.access.lifecycle import grant_revoke
from breakglass.access.models import Grant
from breakglass.keys.selectors import bundle_current, published_bundle_path
from tests.breakglass.conftest import path_make


def exported_issuer_key(kid: str):
    """The issuer's public key as a verifier gets it: from the published bundle file."""
    bundle = json.loads(published_bundle_path().read_text())
    [entry] = [key for key in bundle["payload"]["keys"] if key["kid"] == kid]
    return jw_jwk.JWK(kty=entry["kty"], crv=entry["crv"], x=entry["x"])


def test_an_approved_token_verifies_with_pyjwt_against_the_exported_bundle(
    sso_path, responder, approver, second_approver
):
    grant = grant_request(
        path=sso_path,
        requester=responder,
        reason="fix SSO",
        incident_ref="INC-2026-0042",
        scopes=["admin"],
        lifetime_minutes=15,
    )
    grant_approve(grant=grant, approver=approver)
    grant = grant_approve(grant=grant, approver=second_approver)
    token = grant_credential(grant=grant, user=responder)
    kid = jwt.get_unverified_header(token)["kid"]
    public = jwt.PyJWK(exported_issuer_key(kid).export_public(as_dict=True), algorithm="EdDSA")
    claims = jwt.decode(token, public.key, algorithms=["EdDSA"], audience="sso")
    assert claims["sub"] == "rita-responder"
    assert claims["scope"] == "admin"
    assert claims["path"] == "sso-backup"
    assert claims["incident"] == "INC-2026-0042"
    assert claims["approvers"] == ["alex-approver", "bea-approver"]
    assert claims["emergency"] is False and claims["drill"] is False
    assert claims["jti"] == grant.jti
    assert claims["exp"] - claims["nbf"] == 15 * 60
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, public.key, algorithms=["EdDSA"], audience="vpn")


def test_an_emergency_token_verifies_with_jwcrypto_and_says_so(sso_path, responder):
    grant, token = grant_self_issue(
        path=sso_path, requester=responder, reason="IdP down", confirmation="sso-backup"
    )
    header = jwt.get_unverified_header(token)
    verified = jw_jwt.JWT(
        jwt=token,
        key=exported_issuer_key(header["kid"]),
        algs=["EdDSA"],
        check_claims={"aud": "sso"},
    )
    claims = json.loads(verified.claims)
    assert claims["emergency"] is True
    assert claims["approvers"] == []
    assert claims["incident"] is None


def test_a_revoked_token_is_listed_in_the_next_bundle(
    sso_path, responder, approver, django_capture_on_commit_callbacks
):
    grant, _ = grant_self_issue(
        path=sso_path, requester=responder, reason="x", confirmation="sso-backup"
    )
    version = bundle_current()["payload"]["version"]
    with django_capture_on_commit_callbacks(execute=True):
        grant = grant_revoke(grant=grant, actor=approver, reason="incident over")
    assert grant.state == Grant.State.REVOKED
    assert grant.revoke_reason == "incident over"
    assert grant_credential(grant=grant, user=responder) is None
    current = bundle_current()["payload"]
    assert current["version"] == version + 1
    assert grant.jti in [entry["jti"] for entry in current["revoked_jti"]]
    published = json.loads(published_bundle_path().read_text())["payload"]
    assert grant.jti in [entry["jti"] for entry in published["revoked_jti"]]


def test_revoking_needs_a_reason_and_the_right_person(sso_path, responder, outsider):
    grant, _ = grant_self_issue(
        path=sso_path, requester=responder, reason="x", confirmation="sso-backup"
    )
    with pytest.raises(GrantError, match="reason is required"):
        grant_revoke(grant=grant, actor=responder, reason="")
    with pytest.raises(GrantError, match="Only the grantee"):
        grant_revoke(grant=grant, actor=outsider, reason="mine now")
    grant.refresh_from_db()
    assert grant.state == Grant.State.ISSUED


def test_revoking_twice_is_a_clear_error(sso_path, responder):
    grant, _ = grant_self_issue(
        path=sso_path, requester=responder, reason="x", confirmation="sso-backup"
    )
    grant_revoke(grant=grant, actor=responder, reason="done")
    with pytest.raises(GrantError, match="already revoked"):
        grant_revoke(grant=grant, actor=responder, reason="done")


def test_a_pending_request_can_be_withdrawn_without_touching_the_bundle(sso_path, responder):
    grant = grant_request(path=sso_path, requester=responder, reason="x")
    version = bundle_current()["payload"]["version"]
    assert (
        grant_revoke(grant=grant, actor=responder, reason="not needed").state == Grant.State.REVOKED
    )
    assert bundle_current()["payload"]["version"] == version


@pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="ssh-keygen is not installed")
def test_an_ssh_certificate_is_what_ssh_keygen_expects(trust, responder, ssh_public_key, tmp_path):
    path = path_make("bastion-ssh", service="bastion", method="ssh-certificate", scopes=("login",))
    grant, certificate = grant_self_issue(
        path=path,
        requester=responder,
        reason="bastion",
        confirmation="bastion-ssh",
        ssh_public_key=ssh_public_key,
        lifetime_minutes=30,
    )
    (tmp_path / "id-cert.pub").write_text(certificate + "\n")
    listing = subprocess.run(
        ["ssh-keygen", "-L", "-f", str(tmp_path / "id-cert.pub")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "user certificate" in listing
    assert f"Serial: {grant.pk}" in listing
    assert grant.jti in listing
    assert listing.split("Principals:")[1].split()[0] == f"bg-{path.slug}"
    assert grant.expires_at - grant.issued_at == timedelta(minutes=30)
