"""A bundle remembers the tokens whose signature and claims it has checked, so a
long-running verifier (the sidecar) checks a responder's signature once; every other
rule still applies to every call."""

import pytest

from breakglass.core import (
    BadSignature,
    ExpiredToken,
    RevokedToken,
    VerificationError,
    WrongAudience,
    verify_bundle,
)
from breakglass.core import token as token_module
from breakglass.core.errors import MissingScope
from devkit import keykit as kit


@pytest.fixture
def signature_checks(bundle, monkeypatch):
    """How many Ed25519 verifications `_first_sight` runs."""
    checks = []
    real = token_module._first_sight

    def counting(*args):
        checks.append(args[0])
        return real(*args)

    monkeypatch.setattr(token_module, "_first_sight", counting)
    return checks


def test_a_token_seen_again_is_accepted_without_checking_its_signature_again(
    verify, signature_checks
):
    token = kit.token()
    first, second = verify(token), verify(token)
    assert first == second
    assert first is not second and first["approvers"] is not second["approvers"]
    assert len(signature_checks) == 1


def test_changing_the_claims_returned_changes_nothing_remembered(verify):
    token = kit.token()
    claims = verify(token)
    claims["aud"] = "vpn"
    claims["approvers"].append("mallory")
    again = verify(token)
    assert again["aud"] == kit.AUDIENCE
    assert "mallory" not in again["approvers"]


def test_every_other_rule_still_applies_to_a_remembered_token(verify, signature_checks):
    token = kit.token(exp=kit.NOW + 600)
    verify(token)
    with pytest.raises(WrongAudience):
        verify(token, audience="vpn")
    with pytest.raises(MissingScope):
        verify(token, scope="root")
    with pytest.raises(ExpiredToken):
        verify(token, now=kit.NOW + 600 + 61)
    assert len(signature_checks) == 1


def test_a_new_bundle_remembers_nothing_and_applies_its_revocations(verify):
    token = kit.token(jti="to-be-revoked-0001")
    verify(token)
    newer = verify_bundle(
        kit.bundle(version=8, revoked_jti=[{"jti": "to-be-revoked-0001", "exp": kit.NOW + 3600}]),
        kit.roots(),
        now=kit.NOW,
    )
    assert newer.verified_tokens == {}
    with pytest.raises(RevokedToken):
        verify(token, bundle=newer)


def test_a_remembered_token_with_another_signature_is_checked_and_refused(verify):
    token = kit.token()
    verify(token)
    header, body, _ = token.split(".")
    forged = f"{header}.{body}.{kit.token(jti='other-0001').split('.')[2]}"
    with pytest.raises(BadSignature):
        verify(forged)
    with pytest.raises(BadSignature):
        verify(forged)


def test_a_refused_token_is_never_remembered(verify, bundle):
    with pytest.raises(VerificationError):
        verify(kit.token(key=kit.ATTACKER_KEY, key_id=kit.ISSUER_KID))
    assert bundle.verified_tokens == {}


def test_the_memory_is_bounded(verify, bundle, monkeypatch):
    monkeypatch.setattr(token_module, "_TOKEN_CACHE_LIMIT", 3)
    for n in range(5):
        verify(kit.token(jti=f"bounded-{n:04d}"))
    assert 1 <= len(bundle.verified_tokens) <= 3
