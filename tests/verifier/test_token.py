"""verify_token: what is accepted, and each known attack refused with its specific error."""

import base64
import hashlib
import hmac
import json

import pytest

from breakglass.core import (
    AlgorithmMismatch,
    BadHeader,
    BadSignature,
    DrillNotAllowed,
    ExpiredBundle,
    ExpiredToken,
    IssuedInFuture,
    KeyNotValid,
    LifetimeTooLong,
    MalformedClaims,
    MalformedToken,
    MissingScope,
    NotYetValid,
    RevokedKey,
    RevokedToken,
    UnknownKey,
    VerificationError,
    WrongAudience,
    WrongIssuer,
    verify_bundle,
)
from breakglass.core.b64 import b64url_encode
from breakglass.core.canonical import canonical_json
from devkit import keykit as kit


def forge(header: dict, claims: dict, signature: bytes = b"\0" * 64, *, raw=False) -> str:
    encode = (lambda d: b64url_encode(json.dumps(d).encode())) if raw else None
    encode = encode or (lambda d: b64url_encode(canonical_json(d)))
    return f"{encode(header)}.{encode(claims)}.{b64url_encode(signature)}"


def signed(header: dict, claims: dict, key=kit.ISSUER_KEY) -> str:
    signing_input = (
        f"{b64url_encode(canonical_json(header))}.{b64url_encode(canonical_json(claims))}"
    )
    return signing_input + "." + b64url_encode(key.sign(signing_input.encode()))


HEADER = {"alg": "EdDSA", "typ": "JWT", "kid": kit.ISSUER_KID}


def test_a_valid_token_is_accepted_and_its_claims_returned(verify):
    claims = verify(kit.token(), scope="admin")
    assert claims["sub"] == "rita-responder"
    assert claims["aud"] == "sso"


def test_a_header_written_in_another_member_order_is_still_accepted(verify):
    header = b64url_encode(b'{"kid":"%s","typ":"JWT","alg":"EdDSA"}' % kit.ISSUER_KID.encode())
    body = b64url_encode(canonical_json(kit.claims()))
    signature = b64url_encode(kit.ISSUER_KEY.sign(f"{header}.{body}".encode()))
    assert verify(f"{header}.{body}.{signature}")["jti"]


def test_alg_none_is_refused(verify):
    token = forge({**HEADER, "alg": "none"}, kit.claims(), b"")
    with pytest.raises(AlgorithmMismatch):  # header is judged before the (empty) signature
        verify(token)
    with pytest.raises(AlgorithmMismatch, match="never taken from the token"):
        verify(forge({**HEADER, "alg": "none"}, kit.claims()))


def test_hs256_signed_with_the_public_key_as_secret_is_refused(verify):
    """Algorithm confusion: an HMAC 'signed' with the published public key bytes."""
    header = {**HEADER, "alg": "HS256"}
    signing_input = (
        f"{b64url_encode(canonical_json(header))}.{b64url_encode(canonical_json(kit.claims()))}"
    )
    public = kit.key_entry()["x"].encode()
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(AlgorithmMismatch):
        verify(signing_input + "." + b64url_encode(mac))


@pytest.mark.parametrize("member", ["jku", "jwk", "x5u", "crit", "x5c", "cty"])
def test_header_members_beyond_alg_typ_kid_are_refused(verify, member):
    token = signed({**HEADER, member: "https://attacker.example/keys"}, kit.claims())
    with pytest.raises(BadHeader, match=member):
        verify(token)


def test_a_header_without_kid_is_refused(verify):
    with pytest.raises(BadHeader, match="lacks kid"):
        verify(signed({"alg": "EdDSA", "typ": "JWT"}, kit.claims()))


def test_a_wrong_typ_is_refused(verify):
    with pytest.raises(BadHeader, match="typ"):
        verify(signed({**HEADER, "typ": "at+jwt"}, kit.claims()))


def test_a_duplicate_header_member_is_refused(verify):
    header = b64url_encode(
        b'{"alg":"EdDSA","alg":"none","kid":"%s","typ":"JWT"}' % kit.ISSUER_KID.encode()
    )
    body = b64url_encode(canonical_json(kit.claims()))
    with pytest.raises(MalformedToken, match="duplicate"):
        verify(f"{header}.{body}.{b64url_encode(b'0' * 64)}")


def test_duplicate_claims_are_refused_even_when_signed(verify):
    """Two parsers could disagree about which `aud` wins, so neither may be chosen."""
    header = b64url_encode(canonical_json(HEADER))
    body = b64url_encode(canonical_json(kit.claims())[:-1] + b',"aud":"vpn"}')
    signature = b64url_encode(kit.ISSUER_KEY.sign(f"{header}.{body}".encode()))
    with pytest.raises(MalformedToken, match="duplicate"):
        verify(f"{header}.{body}.{signature}")


def test_a_token_signed_by_an_unknown_key_is_refused(verify):
    with pytest.raises(UnknownKey):
        verify(kit.token(key=kit.ATTACKER_KEY))


def test_a_token_signed_by_another_key_under_the_issuers_kid_is_refused(verify):
    with pytest.raises(BadSignature):
        verify(kit.token(key=kit.ATTACKER_KEY, key_id=kit.ISSUER_KID))


def test_changing_a_claim_breaks_the_signature(verify):
    header, _, signature = kit.token().split(".")
    body = b64url_encode(canonical_json(kit.claims(aud="vpn")))
    with pytest.raises(BadSignature):
        verify(f"{header}.{body}.{signature}")


def test_a_signature_spelled_with_different_trailing_bits_is_refused(verify):
    """`...A` and `...B` decode to the same 64 bytes; only the canonical spelling counts."""
    token = kit.token()
    assert token[-1] in "AQgw"
    twin = token[:-1] + chr(ord(token[-1]) + 1)
    assert base64.urlsafe_b64decode(twin.split(".")[2] + "==") == base64.urlsafe_b64decode(
        token.split(".")[2] + "=="
    )
    with pytest.raises(MalformedToken):
        verify(twin)


def test_a_token_for_another_audience_is_refused(verify):
    with pytest.raises(WrongAudience, match="'vpn'"):
        verify(kit.token(aud="vpn"))


def test_an_audience_list_is_refused_even_if_it_contains_ours(verify):
    with pytest.raises(MalformedClaims, match="single string"):
        verify(kit.token(aud=["sso", "vpn"]))


def test_a_token_from_another_issuer_is_refused(verify):
    with pytest.raises(WrongIssuer):
        verify(kit.token(iss="https://evil.example"))


@pytest.mark.parametrize(
    "claim, value",
    [
        ("exp", True),
        ("exp", "1767229200"),
        ("iat", None),
        ("nbf", -1),
        ("jti", ""),
        ("sub", 7),
        ("scope", ["admin"]),
        ("drill", "false"),
        ("emergency", 1),
        ("approvers", "alex"),
        ("approvers", [1]),
        ("incident", 42),
        ("path", False),
    ],
)
def test_claims_of_the_wrong_type_are_refused(verify, claim, value):
    with pytest.raises(MalformedClaims):
        verify(kit.token(**{claim: value}))


def test_times_beyond_the_safe_integer_range_are_refused(verify):
    header = b64url_encode(canonical_json(HEADER))
    body = b64url_encode(json.dumps(kit.claims(exp=2**60)).encode())
    signature = b64url_encode(kit.ISSUER_KEY.sign(f"{header}.{body}".encode()))
    with pytest.raises(MalformedClaims, match="exp"):
        verify(f"{header}.{body}.{signature}")


def test_float_times_are_refused_even_when_signed(verify):
    header = b64url_encode(canonical_json(HEADER))
    body = b64url_encode(json.dumps(kit.claims(exp=kit.NOW + 600.5)).encode())
    signature = b64url_encode(kit.ISSUER_KEY.sign(f"{header}.{body}".encode()))
    with pytest.raises(MalformedToken, match="non-integer"):
        verify(f"{header}.{body}.{signature}")


def test_a_revoked_jti_is_refused(verify):
    with pytest.raises(RevokedToken):
        verify(kit.token(jti="revoked-jti-0001"))


def test_a_missing_scope_is_refused_and_every_required_scope_is_checked(verify):
    assert verify(kit.token(), scope="ssh:login admin")
    with pytest.raises(MissingScope, match="root"):
        verify(kit.token(), scope="admin root")
    with pytest.raises(MissingScope):  # "admin" is not a prefix match for "adm"
        verify(kit.token(scope="administrator"), scope="admin")


class TestClockSkewAtTheEdges:
    """Accepted while now < exp + leeway and now >= nbf - leeway; refused one second later."""

    def test_expiry_edge(self, verify):
        token = kit.token(exp=kit.NOW + 100)
        assert verify(token, now=kit.NOW + 159)
        with pytest.raises(ExpiredToken):
            verify(token, now=kit.NOW + 160)
        with pytest.raises(ExpiredToken):
            verify(token, now=kit.NOW + 100, leeway=0)

    def test_not_before_edge(self, verify):
        token = kit.token(iat=kit.NOW, nbf=kit.NOW + 100)
        assert verify(token, now=kit.NOW + 40)
        with pytest.raises(NotYetValid):
            verify(token, now=kit.NOW + 39)

    def test_issued_in_the_future_edge(self, verify):
        token = kit.token(iat=kit.NOW + 60, nbf=kit.NOW + 60)
        assert verify(token, now=kit.NOW)
        with pytest.raises(IssuedInFuture):
            verify(kit.token(iat=kit.NOW + 61, nbf=kit.NOW), now=kit.NOW)


def test_a_token_living_longer_than_the_bundle_cap_is_refused(verify):
    assert verify(kit.token(iat=kit.NOW, nbf=kit.NOW, exp=kit.NOW + 4 * kit.HOUR))
    with pytest.raises(LifetimeTooLong):
        verify(kit.token(iat=kit.NOW, nbf=kit.NOW, exp=kit.NOW + 4 * kit.HOUR + 1))


def test_a_callers_stricter_lifetime_cap_applies(verify):
    with pytest.raises(LifetimeTooLong, match="600s"):
        verify(kit.token(), max_lifetime=600)


def test_a_token_expiring_before_it_is_valid_is_refused(verify):
    with pytest.raises(MalformedClaims):
        verify(kit.token(nbf=kit.NOW, exp=kit.NOW), leeway=120)


class TestKeyValidity:
    def bundle_with_key(self, **window):
        return verify_bundle(kit.bundle(keys=[kit.key_entry(**window)]), kit.roots(), now=kit.NOW)

    def test_a_key_is_usable_from_not_before_up_to_not_after_exclusive(self, verify):
        bundle = self.bundle_with_key(not_before=kit.NOW - 100, not_after=kit.NOW + 100)
        token = kit.token(iat=kit.NOW - 100, nbf=kit.NOW - 100, exp=kit.NOW + 200)
        assert verify(token, bundle=bundle, now=kit.NOW - 100)
        assert verify(token, bundle=bundle, now=kit.NOW + 99)

    def test_a_key_past_its_not_after_is_refused(self, verify):
        bundle = self.bundle_with_key(not_before=kit.NOW - 9000, not_after=kit.NOW)
        with pytest.raises(KeyNotValid):
            verify(kit.token(), bundle=bundle)

    def test_a_key_before_its_not_before_is_refused(self, verify):
        bundle = self.bundle_with_key(not_before=kit.NOW + 1, not_after=kit.NOW + 9000)
        with pytest.raises(KeyNotValid):
            verify(kit.token(), bundle=bundle)

    def test_a_revoked_key_is_refused_even_if_still_listed(self, verify):
        bundle = verify_bundle(kit.bundle(revoked_kids=[kit.ISSUER_KID]), kit.roots(), now=kit.NOW)
        with pytest.raises(RevokedKey):
            verify(kit.token(), bundle=bundle)

    def test_a_key_entry_with_another_algorithm_cannot_verify_anything(self, verify):
        entry = kit.key_entry(alg="ES256")
        bundle = verify_bundle(kit.bundle(keys=[entry]), kit.roots(), now=kit.NOW)
        with pytest.raises(AlgorithmMismatch):
            verify(kit.token(), bundle=bundle)
        with pytest.raises(UnknownKey, match="not supported"):
            verify(signed({**HEADER, "alg": "ES256"}, kit.claims()), bundle=bundle)


def test_tokens_are_refused_once_the_bundle_itself_has_expired(verify):
    with pytest.raises(ExpiredBundle):
        verify(
            kit.token(iat=kit.NOW + 86400, nbf=kit.NOW + 86400, exp=kit.NOW + 86400 + 600),
            now=kit.NOW + 86400,
        )


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a.b.c.d", "é.b.c", "x" * 20000, "..", "eyJ.eyJ.AAAA", None, 7, b"\xff.\xfe.\x00"],
)
def test_garbage_is_refused_with_a_verification_error(verify, token):
    with pytest.raises(VerificationError) as caught:
        verify(token)
    assert str(caught.value)


def test_every_error_has_a_distinct_code_and_a_human_message():
    from breakglass.core import ALL_ERRORS

    codes = [error.code for error in ALL_ERRORS]
    assert len(codes) == len(set(codes))
    assert all(issubclass(error, VerificationError) for error in ALL_ERRORS)


def test_a_required_subject_must_match_the_sub_claim(verify):
    from breakglass.core import WrongSubject

    assert verify(kit.token(), subject="rita-responder")
    with pytest.raises(WrongSubject, match="'root'"):
        verify(kit.token(), subject="root")


def test_a_drill_token_is_refused_unless_the_caller_allows_drills(verify):
    drill = kit.token(drill=True)
    with pytest.raises(DrillNotAllowed, match="drill credential"):
        verify(drill)
    assert verify(drill, allow_drill=True)["drill"] is True
    assert verify(kit.token(drill=False))["drill"] is False  # real tokens need no opt-in
