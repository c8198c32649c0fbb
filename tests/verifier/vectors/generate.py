"""Generate the golden test vectors in vectors.json (deterministic: run it twice, same bytes).

    .venv/bin/python -m tests.verifier.vectors.generate        # rewrites vectors.json

Implementations in other languages load vectors.json and check they reach the same
decision for every case (see docs/verifier.md, "Golden test vectors"). The keys come from
fixed seeds, so these documents are test data only: never trust these roots anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from breakglass.core.b64 import b64url_encode
from breakglass.core.canonical import canonical_json
from breakglass.core.signing import bundle_sign
from devkit import keykit as kit

OUTPUT = Path(__file__).with_name("vectors.json")
NOW = kit.NOW
ROOT1, ROOT2, ROOT3 = kit.ROOT_KEYS
HEADER = {"alg": "EdDSA", "typ": "JWT", "kid": kit.ISSUER_KID}
OLD_KEY = kit.seeded_key("breakglass-test-issuer-old")
RETIRED_KIT_KEY = kit.seeded_key("breakglass-test-kit-retired")
WEEK = 7 * 86400


def text(document) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def encode(part) -> str:
    return b64url_encode(part if isinstance(part, bytes) else canonical_json(part))


def sign(header, claims, key=kit.ISSUER_KEY) -> str:
    signing_input = f"{encode(header)}.{encode(claims)}"
    return f"{signing_input}.{b64url_encode(key.sign(signing_input.encode()))}"


def bundles() -> dict[str, str]:
    old_entry = kit.key_entry(OLD_KEY, not_before=NOW - 90 * 86400, not_after=NOW - 3600)
    signed = kit.bundle()
    tampered = json.loads(text(signed))
    tampered["payload"]["max_token_lifetime"] = 10**7
    duplicate = text(signed).replace('"version":7', '"version":7,"version":70', 1)
    renamed = kit.bundle(keys=[kit.key_entry(kid="friendly-name")])
    return {
        "current": text(signed),
        "with_old_and_revoked_keys": text(
            kit.bundle(
                version=8,
                keys=[kit.key_entry(), old_entry, kit.key_entry(kit.ATTACKER_KEY)],
                revoked_kids=[kit.kid(kit.ATTACKER_KEY)],
            )
        ),
        "signed_twice_by_one_root": text(kit.bundle(signers=[ROOT1, ROOT1])),
        "signed_by_one_root": text(kit.bundle(signers=[ROOT3])),
        "signed_by_two_roots_and_an_unpinned_key": text(
            kit.bundle(signers=[ROOT2, kit.ATTACKER_KEY, ROOT3])
        ),
        "pinned_root_signature_by_another_key": text(
            bundle_sign(
                kit.payload(), [(kit.kid(ROOT1), ROOT1), (kit.kid(ROOT2), kit.ATTACKER_KEY)]
            )
        ),
        "payload_changed_after_signing": text(tampered),
        "duplicate_member": duplicate,
        "kid_not_a_thumbprint": text(renamed),
        "float_in_payload": text(signed).replace(
            '"max_token_lifetime":14400', '"max_token_lifetime":14400.0'
        ),
        # Sealed kits (docs/token-format.md, "Kit certificate"): kit-test is live, kit-old
        # retired (its kid in revoked_kids).
        "with_kits": text(
            kit.bundle(
                kits=[
                    kit.kit_document(),
                    kit.kit_document(key=RETIRED_KIT_KEY, kit="kit-old"),
                ],
                revoked_kids=[kit.kid(RETIRED_KIT_KEY)],
            )
        ),
        "kit_signed_by_one_root": text(kit.bundle(kits=[kit.kit_document(signers=[ROOT1])])),
        "kit_for_another_issuer": text(
            kit.bundle(kits=[kit.kit_document(issuer="https://evil.example")])
        ),
    }


def token_cases() -> list[dict]:
    hs_input = f"{encode({**HEADER, 'alg': 'HS256'})}.{encode(kit.claims())}"
    hs_mac = hmac.new(kit.key_entry()["x"].encode(), hs_input.encode(), hashlib.sha256).digest()
    valid = kit.token()
    header_part, claims_part, signature_part = valid.split(".")
    raw_duplicate = canonical_json(kit.claims())[:-1] + b',"aud":"vpn"}'
    raw_float = json.dumps(kit.claims(exp=NOW + 600.5), sort_keys=True).encode()
    cases = [
        ("valid", valid, {}, "accept"),
        ("valid_with_required_scopes", valid, {"scope": "ssh:login admin"}, "accept"),
        (
            "header_in_another_member_order",
            sign_raw(
                b'{"kid":"%s","typ":"JWT","alg":"EdDSA"}' % kit.ISSUER_KID.encode(), kit.claims()
            ),
            {},
            "accept",
        ),
        ("missing_scope", valid, {"scope": "admin root"}, "missing_scope"),
        (
            "scope_is_not_a_prefix_match",
            kit.token(scope="administrator"),
            {"scope": "admin"},
            "missing_scope",
        ),
        ("wrong_audience", valid, {"audience": "vpn"}, "wrong_audience"),
        (
            "drill_token_where_drills_are_not_allowed",
            kit.token(drill=True),
            {},
            "drill_not_allowed",
        ),
        ("drill_token_at_a_drill_probe", kit.token(drill=True), {"allow_drill": True}, "accept"),
        (
            "drill_token_for_another_audience",
            kit.token(drill=True),
            {"audience": "vpn", "allow_drill": True},
            "wrong_audience",
        ),
        ("audience_list", kit.token(aud=["sso", "vpn"]), {}, "bad_claims"),
        ("wrong_issuer", kit.token(iss="https://evil.example"), {}, "wrong_issuer"),
        (
            "expired_just_within_leeway",
            kit.token(iat=NOW - 600, nbf=NOW - 600, exp=NOW - 59),
            {},
            "accept",
        ),
        (
            "expired_at_leeway_edge",
            kit.token(iat=NOW - 600, nbf=NOW - 600, exp=NOW - 60),
            {},
            "expired",
        ),
        (
            "expired_without_leeway",
            kit.token(iat=NOW - 600, nbf=NOW - 600, exp=NOW),
            {"leeway": 0},
            "expired",
        ),
        ("not_before_within_leeway", kit.token(iat=NOW, nbf=NOW + 60), {}, "accept"),
        ("not_yet_valid", kit.token(iat=NOW, nbf=NOW + 61), {}, "not_yet_valid"),
        ("issued_in_the_future", kit.token(iat=NOW + 61), {}, "issued_in_future"),
        ("lifetime_at_cap", kit.token(iat=NOW, nbf=NOW, exp=NOW + 14400), {}, "accept"),
        (
            "lifetime_above_cap",
            kit.token(iat=NOW, nbf=NOW, exp=NOW + 14401),
            {},
            "lifetime_too_long",
        ),
        (
            "expires_before_valid",
            kit.token(iat=NOW, nbf=NOW, exp=NOW),
            {"leeway": 120},
            "bad_claims",
        ),
        ("revoked_jti", kit.token(jti="revoked-jti-0001"), {}, "revoked"),
        (
            "alg_none_unsigned",
            f"{encode({**HEADER, 'alg': 'none'})}.{claims_part}.",
            {},
            "bad_algorithm",
        ),
        (
            "alg_none_with_signature",
            f"{encode({**HEADER, 'alg': 'none'})}.{claims_part}.{signature_part}",
            {},
            "bad_algorithm",
        ),
        (
            "alg_hs256_with_public_key_as_secret",
            f"{hs_input}.{b64url_encode(hs_mac)}",
            {},
            "bad_algorithm",
        ),
        (
            "header_jku",
            sign({**HEADER, "jku": "https://attacker.example/jwks"}, kit.claims()),
            {},
            "bad_header",
        ),
        (
            "header_jwk",
            sign(
                {**HEADER, "jwk": kit.key_entry(kit.ATTACKER_KEY)}, kit.claims(), kit.ATTACKER_KEY
            ),
            {},
            "bad_header",
        ),
        (
            "header_x5u",
            sign({**HEADER, "x5u": "https://attacker.example/cert"}, kit.claims()),
            {},
            "bad_header",
        ),
        ("header_crit", sign({**HEADER, "crit": ["exp"]}, kit.claims()), {}, "bad_header"),
        (
            "header_without_typ",
            sign({"alg": "EdDSA", "kid": kit.ISSUER_KID}, kit.claims()),
            {},
            "bad_header",
        ),
        ("unknown_kid", kit.token(key=kit.ATTACKER_KEY), {}, "unknown_key"),
        (
            "other_key_under_issuer_kid",
            kit.token(key=kit.ATTACKER_KEY, key_id=kit.ISSUER_KID),
            {},
            "bad_signature",
        ),
        (
            "claims_changed_after_signing",
            f"{header_part}.{encode(kit.claims(aud='vpn'))}.{signature_part}",
            {},
            "bad_signature",
        ),
        (
            "signature_with_trailing_bits_set",
            valid[:-1] + chr(ord(valid[-1]) + 1),
            {},
            "malformed_token",
        ),
        ("signature_padded", valid + "==", {}, "malformed_token"),
        (
            "duplicate_claim_signed",
            sign_raw(canonical_json(HEADER), raw_duplicate),
            {},
            "malformed_token",
        ),
        ("float_time_signed", sign_raw(canonical_json(HEADER), raw_float), {}, "malformed_token"),
        ("boolean_time_signed", kit.token(exp=True), {}, "bad_claims"),
        ("string_time_signed", kit.token(exp=str(NOW + 600)), {}, "bad_claims"),
        ("two_parts", f"{header_part}.{claims_part}", {}, "malformed_token"),
        ("empty", "", {}, "malformed_token"),
        ("non_ascii", valid.replace("e", "\u00e9", 1), {}, "malformed_token"),
        # Tokens checked against the bundle with an expired key and a revoked key.
        (
            "key_past_not_after",
            kit.token(key=OLD_KEY, iat=NOW - 7200, nbf=NOW - 7200, exp=NOW + 3600),
            {"bundle": "with_old_and_revoked_keys"},
            "key_not_valid",
        ),
        (
            "revoked_key",
            kit.token(key=kit.ATTACKER_KEY),
            {"bundle": "with_old_and_revoked_keys"},
            "revoked_key",
        ),
        ("valid_with_second_bundle", valid, {"bundle": "with_old_and_revoked_keys"}, "accept"),
        # Sealed-kit tokens, against the bundle carrying kit-test and the retired kit-old.
        ("kit_token", kit.kit_token(), {"bundle": "with_kits"}, "accept"),
        (
            "kit_token_after_the_bundle_expired",
            kit.kit_token(iat=NOW + WEEK, nbf=NOW + WEEK, exp=NOW + WEEK + 600),
            {"bundle": "with_kits", "now": NOW + WEEK, "allow_expired": True},
            "accept",
        ),
        (
            "normal_token_after_the_bundle_expired",
            kit.token(iat=NOW + WEEK, nbf=NOW + WEEK, exp=NOW + WEEK + 600),
            {"bundle": "with_kits", "now": NOW + WEEK, "allow_expired": True},
            "expired_bundle",
        ),
        (
            "kit_token_for_an_audience_outside_the_kit",
            kit.kit_token(aud="db"),
            {"bundle": "with_kits", "audience": "db"},
            "beyond_kit_policy",
        ),
        (
            "kit_token_with_a_scope_outside_the_kit",
            kit.kit_token(scope="ssh:login admin"),
            {"bundle": "with_kits"},
            "beyond_kit_policy",
        ),
        (
            "kit_token_longer_than_the_kits_cap",
            kit.kit_token(exp=NOW + 2 * 3600),
            {"bundle": "with_kits"},
            "beyond_kit_policy",
        ),
        (
            "kit_token_without_kit_claim",
            kit.kit_token(kit=None),
            {"bundle": "with_kits"},
            "bad_claims",
        ),
        (
            "issuer_token_claiming_a_kit",
            kit.token(kit=kit.KIT_ID),
            {"bundle": "with_kits"},
            "bad_claims",
        ),
        (
            "retired_kit_token",
            kit.kit_token(key=RETIRED_KIT_KEY, kit="kit-old"),
            {"bundle": "with_kits"},
            "retired_kit",
        ),
        (
            "other_key_under_kit_kid",
            sign(
                {"alg": "EdDSA", "typ": "JWT", "kid": kit.kid(kit.KIT_KEY)},
                kit.kit_claims(),
                kit.ATTACKER_KEY,
            ),
            {"bundle": "with_kits"},
            "bad_signature",
        ),
    ]
    result = []
    for name, token, options, expected in cases:
        case = {
            "name": name,
            "bundle": options.get("bundle", "current"),
            "token": token,
            "audience": options.get("audience", kit.AUDIENCE),
            "scope": options.get("scope"),
            "now": options.get("now", NOW),
            "leeway": options.get("leeway", 60),
            "allow_drill": options.get("allow_drill", False),
            "allow_expired": options.get("allow_expired", False),
            "expected": expected,
        }
        result.append(case)
    return result


def sign_raw(header: bytes, claims) -> str:
    signing_input = f"{encode(header)}.{encode(claims)}"
    return f"{signing_input}.{b64url_encode(kit.ISSUER_KEY.sign(signing_input.encode()))}"


def bundle_cases() -> list[dict]:
    expires = NOW + 24 * 3600
    issued = NOW - 3600
    cases = [
        ("current", "current", {}, "accept"),
        ("one_second_before_expiry", "current", {"now": expires - 1}, "accept"),
        ("at_expiry", "current", {"now": expires}, "expired_bundle"),
        ("issued_60s_in_the_future", "current", {"now": issued - 60}, "accept"),
        ("issued_61s_in_the_future", "current", {"now": issued - 61}, "bundle_not_yet_valid"),
        ("rolled_back_below_seen_version", "current", {"min_version": 8}, "stale_bundle"),
        ("same_version_as_seen", "current", {"min_version": 7}, "accept"),
        ("with_old_and_revoked_keys", "with_old_and_revoked_keys", {}, "accept"),
        ("signed_twice_by_one_root", "signed_twice_by_one_root", {}, "insufficient_signatures"),
        ("signed_by_one_root", "signed_by_one_root", {}, "insufficient_signatures"),
        ("unpinned_signer_is_ignored", "signed_by_two_roots_and_an_unpinned_key", {}, "accept"),
        ("pinned_root_kid_other_key", "pinned_root_signature_by_another_key", {}, "bad_signature"),
        ("payload_changed_after_signing", "payload_changed_after_signing", {}, "bad_signature"),
        ("duplicate_member", "duplicate_member", {}, "malformed_bundle"),
        ("kid_not_a_thumbprint", "kid_not_a_thumbprint", {}, "malformed_bundle"),
        ("float_in_payload", "float_in_payload", {}, "malformed_bundle"),
        ("with_kits", "with_kits", {}, "accept"),
        ("with_kits_expired", "with_kits", {"now": expires}, "expired_bundle"),
        (
            "with_kits_expired_kept_for_kits",
            "with_kits",
            {"now": expires + WEEK, "allow_expired": True},
            "accept",
        ),
        ("kit_signed_by_one_root", "kit_signed_by_one_root", {}, "insufficient_signatures"),
        ("kit_for_another_issuer", "kit_for_another_issuer", {}, "malformed_bundle"),
    ]
    return [
        {
            "name": name,
            "bundle": bundle,
            "now": options.get("now", NOW),
            "leeway": 60,
            "min_version": options.get("min_version"),
            "allow_expired": options.get("allow_expired", False),
            "expected": expected,
        }
        for name, bundle, options, expected in cases
    ]


def vectors() -> dict:
    return {
        "description": (
            "Golden vectors for Breakglass token and trust-bundle verification "
            "(docs/token-format.md, docs/verifier.md). Test keys from fixed seeds: never trust "
            "these roots. For each bundle case, verify bundles[case.bundle] (JSON text) against "
            "roots at case.now with case.leeway and, if set, case.min_version as the highest "
            "version already seen. For each token case, verify bundles[case.bundle] at case.now, "
            "then the token for case.audience (and case.scope, if set), accepting drill tokens "
            "(drill: true) only if case.allow_drill. With case.allow_expired a bundle past "
            "expires_at is kept, and then only sealed-kit tokens are acceptable "
            "(docs/operations.md, 'The sealed kit'). 'expected' is 'accept' "
            "or the error code of the first failing check."
        ),
        "roots": text(kit.roots()),
        "bundles": bundles(),
        "bundle_cases": bundle_cases(),
        "token_cases": token_cases(),
    }


def render() -> str:
    return json.dumps(vectors(), indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT}")
