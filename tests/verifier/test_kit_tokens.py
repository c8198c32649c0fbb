"""Kit tokens in the library verifier: accepted within the kit's policy, even after the
bundle expires; everything else still fails closed."""

import pytest

from breakglass.core import (
    BeyondKitPolicy,
    ExpiredBundle,
    InsufficientSignatures,
    KeyNotValid,
    MalformedBundle,
    MalformedClaims,
    MalformedKit,
    RetiredKit,
    verify_bundle,
    verify_token,
)
from devkit import keykit as kit

DAY = 24 * kit.HOUR


def expired_bundle(**overrides):
    """The bundle carrying the kit, verified a week after it expired."""
    return verify_bundle(
        kit.bundle(kits=[kit.kit_document()], **overrides),
        kit.roots(),
        now=kit.NOW + 7 * DAY,
        allow_expired=True,
    )


def test_a_kit_token_within_policy_is_accepted_and_names_its_kit(kit_bundle):
    claims = verify_token(
        kit.kit_token(), kit_bundle, audience="sso", scope="ssh:login", now=kit.NOW
    )
    assert claims["kit"] == kit.KIT_ID
    assert claims["approvers"] == ["Alice", "Carol"]


def test_after_the_bundle_expires_normal_tokens_are_refused_and_kit_tokens_accepted():
    later = kit.NOW + 7 * DAY
    bundle = expired_bundle()
    with pytest.raises(ExpiredBundle):
        verify_token(
            kit.token(iat=later, nbf=later, exp=later + 600), bundle, audience="sso", now=later
        )
    token = kit.kit_token(iat=later, nbf=later, exp=later + 600)
    assert verify_token(token, bundle, audience="sso", now=later)["kit"] == kit.KIT_ID


def test_an_expired_bundle_is_still_refused_unless_the_caller_allows_kits():
    with pytest.raises(ExpiredBundle):
        verify_bundle(kit.bundle(kits=[kit.kit_document()]), kit.roots(), now=kit.NOW + 7 * DAY)


def test_an_expired_bundle_still_applies_its_revocations():
    later = kit.NOW + 7 * DAY
    bundle = expired_bundle(revoked_kids=[kit.kid(kit.KIT_KEY)])
    with pytest.raises(RetiredKit, match="kit 'kit-test' has been retired"):
        verify_token(
            kit.kit_token(iat=later, nbf=later, exp=later + 600), bundle, audience="sso", now=later
        )


def test_a_retired_kit_is_refused():
    bundle = verify_bundle(
        kit.bundle(kits=[kit.kit_document()], revoked_kids=[kit.kid(kit.KIT_KEY)]),
        kit.roots(),
        now=kit.NOW,
    )
    with pytest.raises(RetiredKit):
        verify_token(kit.kit_token(), bundle, audience="sso", now=kit.NOW)


@pytest.mark.parametrize(
    "overrides, audience, message",
    [
        ({"aud": "db"}, "db", "does not cover audience 'db'"),
        ({"scope": "ssh:login admin"}, "sso", "does not grant scope 'admin'"),
        ({"exp": kit.NOW + 2 * kit.HOUR}, "sso", "cap of kit 'kit-test'"),
    ],
)
def test_a_kit_token_beyond_the_kits_policy_is_refused(kit_bundle, overrides, audience, message):
    # The bundle's own cap (4 h) would allow the long token: the kit's (1 h) applies.
    with pytest.raises(BeyondKitPolicy, match=message):
        verify_token(kit.kit_token(**overrides), kit_bundle, audience=audience, now=kit.NOW)


def test_a_kit_key_token_must_carry_its_kit_claim_and_only_kit_keys_may(kit_bundle):
    with pytest.raises(MalformedClaims, match="must carry kit"):
        verify_token(kit.kit_token(kit=None), kit_bundle, audience="sso", now=kit.NOW)
    with pytest.raises(MalformedClaims, match="only a kit key"):
        verify_token(kit.token(kit=kit.KIT_ID), kit_bundle, audience="sso", now=kit.NOW)


def test_a_kit_is_usable_only_within_its_own_validity():
    bundle = verify_bundle(
        kit.bundle(kits=[kit.kit_document(not_after=kit.NOW + DAY)]), kit.roots(), now=kit.NOW
    )
    later = kit.NOW + 2 * DAY
    with pytest.raises(KeyNotValid, match="kit 'kit-test' is valid from"):
        verify_token(
            kit.kit_token(iat=later, nbf=later, exp=later + 600), bundle, audience="sso", now=later
        )


def test_a_kit_certified_by_fewer_roots_than_the_threshold_refuses_the_bundle():
    with pytest.raises(InsufficientSignatures, match="kit is signed by 1"):
        verify_bundle(
            kit.bundle(kits=[kit.kit_document(signers=kit.ROOT_KEYS[:1])]), kit.roots(), now=kit.NOW
        )


def test_a_kit_for_another_issuer_or_with_a_forged_policy_refuses_the_bundle():
    with pytest.raises(MalformedBundle, match="another issuer"):
        verify_bundle(
            kit.bundle(kits=[kit.kit_document(issuer="https://evil.example")]),
            kit.roots(),
            now=kit.NOW,
        )
    forged = kit.kit_document()
    forged["payload"]["audiences"] = ["sso", "db"]  # after the roots signed
    with pytest.raises(InsufficientSignatures.__mro__[1], match="does not verify"):
        verify_bundle(kit.bundle(kits=[forged]), kit.roots(), now=kit.NOW)
    with pytest.raises(MalformedKit):
        verify_bundle(
            kit.bundle(kits=[{"payload": {}, "signatures": []}]), kit.roots(), now=kit.NOW
        )


def test_a_kit_token_signed_by_another_key_is_refused(kit_bundle):
    from breakglass.core import BadSignature
    from breakglass.core.jws import jws_sign

    forged = jws_sign(kit.kit_claims(), private_key=kit.ATTACKER_KEY, kid=kit.kid(kit.KIT_KEY))
    with pytest.raises(BadSignature):
        verify_token(forged, kit_bundle, audience="sso", now=kit.NOW)
