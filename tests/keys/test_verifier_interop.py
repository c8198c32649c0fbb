"""What the server publishes is what the offline verifier (breakglass.core) accepts."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from breakglass.core import verify_bundle, verify_token
from breakglass.core.errors import RevokedKey, RevokedToken
from breakglass.keys import selectors, services


def mint(jti: str) -> str:
    now = timezone.now()
    return services.token_mint(
        subject="rita-responder",
        audience="sso",
        scopes=["admin"],
        path="sso-backup",
        incident=None,
        approvers=[],
        drill=False,
        emergency=True,
        not_before=now,
        expires_at=now + timedelta(minutes=15),
        jti=jti,
    )


def published():
    bundle = json.loads(selectors.published_bundle_path().read_text())
    roots = json.loads(selectors.published_roots_path().read_text())
    return verify_bundle(bundle, roots)


def test_published_files_verify_and_accept_a_minted_token(
    trust, django_capture_on_commit_callbacks
):
    claims = verify_token(mint("a"), published(), audience="sso", scope="admin")
    assert claims["jti"] == "a"


def test_revoked_token_is_refused_by_the_next_bundle(trust, django_capture_on_commit_callbacks):
    token = mint("b")
    with django_capture_on_commit_callbacks(execute=True):
        services.credential_revoke(
            jti="b", expires_at=timezone.now() + timedelta(minutes=15), reason="r"
        )
    with pytest.raises(RevokedToken):
        verify_token(token, published(), audience="sso")


def test_rotated_out_key_still_verifies_but_a_revoked_one_does_not(
    trust, django_capture_on_commit_callbacks
):
    old_token = mint("c")
    old_kid = selectors.issuer_key_signing().kid
    with django_capture_on_commit_callbacks(execute=True):
        services.issuer_key_rotate()
    verify_token(old_token, published(), audience="sso")
    with django_capture_on_commit_callbacks(execute=True):
        services.key_revoke(kid=old_kid, reason="leaked")
    with pytest.raises(RevokedKey):
        verify_token(old_token, published(), audience="sso")
    verify_token(mint("d"), published(), audience="sso")
