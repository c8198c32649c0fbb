import json
from datetime import timedelta

import jwt
import pytest
import time_machine
from django.utils import timezone
from jwcrypto import jwk as jw_jwk
from jwcrypto import jwt as jw_jwt

from breakglass.core.b64 import b64url_decode
from breakglass.core.keys import public_from_x
from breakglass.keys import selectors, services
from breakglass.keys.models import SigningKey


def mint(**overrides):
    now = timezone.now()
    fields = {
        "subject": "rita-responder",
        "audience": "sso",
        "scopes": ["admin:read", "admin:write"],
        "path": "sso-backup",
        "incident": "INC-2026-0042",
        "approvers": ["alex-approver"],
        "drill": False,
        "emergency": True,
        "not_before": now,
        "expires_at": now + timedelta(minutes=30),
        "jti": "grant-1-abc",
    }
    fields.update(overrides)
    return services.token_mint(**fields)


def issuer_public():
    return public_from_x(selectors.issuer_key_signing().public_key)


def test_header_is_exactly_alg_typ_kid(trust):
    token = mint()
    header = json.loads(b64url_decode(token.split(".")[0]))
    assert header == {"alg": "EdDSA", "typ": "JWT", "kid": selectors.issuer_key_signing().kid}


def test_token_verifies_with_pyjwt_and_has_the_specified_claims(trust):
    token = mint()
    claims = jwt.decode(token, issuer_public(), algorithms=["EdDSA"], audience="sso")
    assert claims["iss"] == "https://breakglass.test"
    assert claims["sub"] == "rita-responder"
    assert claims["aud"] == "sso"
    assert claims["scope"] == "admin:read admin:write"
    assert claims["path"] == "sso-backup"
    assert claims["incident"] == "INC-2026-0042"
    assert claims["approvers"] == ["alex-approver"]
    assert claims["drill"] is False
    assert claims["emergency"] is True
    assert claims["jti"] == "grant-1-abc"
    assert all(type(claims[name]) is int for name in ("iat", "nbf", "exp"))
    assert claims["exp"] - claims["nbf"] == 30 * 60


def test_token_verifies_with_jwcrypto_given_the_bundle_jwk(trust):
    token = mint(drill=True)
    entry = selectors.bundle_current()["payload"]["keys"][0]
    key = jw_jwk.JWK(kty="OKP", crv="Ed25519", x=entry["x"])
    verified = jw_jwt.JWT(jwt=token, key=key, algs=["EdDSA"], check_claims={"aud": "sso"})
    claims = json.loads(verified.claims)
    assert claims["drill"] is True
    assert verified.token.jose_header["kid"] == entry["kid"]


def test_token_signed_by_another_key_does_not_verify(trust):
    token = mint()
    services.issuer_key_rotate()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, issuer_public(), algorithms=["EdDSA"], audience="sso")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"audience": "sso vpn"}, "exactly one service"),
        ({"scopes": ["two words"]}, "without spaces"),
        ({"scopes": []}, "without spaces"),
        ({"jti": ""}, "subject and a jti"),
    ],
)
def test_malformed_requests_are_refused(trust, overrides, message):
    with pytest.raises(services.TokenRequestInvalid, match=message):
        mint(**overrides)


def test_lifetime_over_the_maximum_is_refused(trust, settings):
    settings.BREAKGLASS_MAX_TOKEN_LIFETIME_MINUTES = 60
    now = timezone.now()
    with pytest.raises(services.TokenRequestInvalid, match="at most 60 minutes"):
        mint(not_before=now, expires_at=now + timedelta(minutes=61))


def test_minting_before_bootstrap_says_what_to_run(db):
    with pytest.raises(services.KeysNotReady, match="init_keys"):
        mint()


def test_minting_is_audited_without_the_token(trust):
    from breakglass.audit.models import AuditEvent

    token = mint()
    event = AuditEvent.objects.get(action="token.minted")
    assert event.object_id == "grant-1-abc"
    assert token.split(".")[2] not in json.dumps(event.data)


def test_rotation_keeps_old_tokens_verifiable_through_the_bundle(
    trust, django_capture_on_commit_callbacks
):
    old_token = mint(jti="old")
    old_kid = selectors.issuer_key_signing().kid
    with django_capture_on_commit_callbacks(execute=True):
        new_key = services.issuer_key_rotate()
    new_token = mint(jti="new")
    assert json.loads(b64url_decode(new_token.split(".")[0]))["kid"] == new_key.kid

    bundle = json.loads(selectors.published_bundle_path().read_text())
    keys = {entry["kid"]: entry for entry in bundle["payload"]["keys"]}
    assert set(keys) == {old_kid, new_key.kid}
    for token in (old_token, new_token):
        kid = jwt.get_unverified_header(token)["kid"]
        jwt.decode(token, public_from_x(keys[kid]["x"]), algorithms=["EdDSA"], audience="sso")
    assert SigningKey.objects.get(kid=old_kid).state == SigningKey.State.RETIRING


def test_retiring_key_leaves_the_bundle_after_its_end_date(trust):
    old = selectors.issuer_key_signing()
    services.issuer_key_rotate()
    with time_machine.travel(old.not_after + timedelta(seconds=1)):
        services.bundle_refresh()
        kids = [k["kid"] for k in selectors.bundle_current()["payload"]["keys"]]
    assert old.kid not in kids
    assert SigningKey.objects.get(kid=old.kid).state == SigningKey.State.RETIRED


def test_refresh_rotates_an_issuer_key_close_to_its_end(trust):
    old = selectors.issuer_key_signing()
    with time_machine.travel(old.not_after - timedelta(days=10)):
        services.bundle_refresh()
        assert selectors.issuer_key_signing().kid != old.kid


def test_token_outliving_the_issuer_key_is_refused(trust):
    key = selectors.issuer_key_signing()
    with time_machine.travel(key.not_after - timedelta(minutes=10)):
        with pytest.raises(services.KeysNotReady, match="rotate"):
            mint(expires_at=timezone.now() + timedelta(minutes=30))
