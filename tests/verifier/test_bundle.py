"""verify_bundle: threshold signatures by distinct roots, structure, freshness, anti-rollback."""

import json

import pytest

from breakglass.core import (
    BadSignature,
    BundleNotYetValid,
    ExpiredBundle,
    InsufficientSignatures,
    MalformedBundle,
    MalformedRoots,
    StaleBundle,
    verify_bundle,
)
from breakglass.core.signing import bundle_sign
from devkit import keykit as kit

ROOT1, ROOT2, ROOT3 = kit.ROOT_KEYS


def test_a_bundle_signed_by_the_threshold_of_roots_is_accepted():
    bundle = verify_bundle(kit.dumps(kit.bundle()), kit.dumps(kit.roots()), now=kit.NOW)
    assert bundle.version == 7
    assert bundle.signed_by == sorted([kit.kid(ROOT1), kit.kid(ROOT2)])
    assert kit.ISSUER_KID in bundle.keys
    assert "revoked-jti-0001" in bundle.revoked_jti


def test_the_same_root_signing_twice_does_not_reach_the_threshold():
    with pytest.raises(InsufficientSignatures, match="counts once"):
        verify_bundle(kit.bundle(signers=[ROOT1, ROOT1]), kit.roots(), now=kit.NOW)


def test_one_root_key_listed_under_two_kids_is_a_broken_roots_file():
    roots = kit.roots()
    roots["keys"].append({**roots["keys"][0], "kid": "alias-of-root-1"})
    with pytest.raises(MalformedRoots, match="thumbprint"):
        verify_bundle(kit.bundle(), roots, now=kit.NOW)
    roots["keys"][-1]["kid"] = roots["keys"][0]["kid"]
    with pytest.raises(MalformedRoots, match="twice"):
        verify_bundle(kit.bundle(), roots, now=kit.NOW)


def test_an_issuer_kid_that_is_not_its_keys_thumbprint_is_refused():
    with pytest.raises(MalformedBundle, match="thumbprint"):
        verify_bundle(
            kit.bundle(keys=[kit.key_entry(kid="friendly-name")]), kit.roots(), now=kit.NOW
        )


def test_fewer_signatures_than_the_threshold_are_refused():
    with pytest.raises(InsufficientSignatures):
        verify_bundle(kit.bundle(signers=[ROOT3]), kit.roots(), now=kit.NOW)
    assert verify_bundle(kit.bundle(signers=[ROOT3]), kit.roots(threshold=1), now=kit.NOW)


def test_signatures_by_roots_we_do_not_pin_are_ignored():
    document = kit.bundle(signers=[ROOT1, kit.ATTACKER_KEY, ROOT3])
    assert verify_bundle(document, kit.roots(), now=kit.NOW).signed_by
    document = kit.bundle(signers=[ROOT1, kit.ATTACKER_KEY])
    with pytest.raises(InsufficientSignatures):
        verify_bundle(document, kit.roots(), now=kit.NOW)


def test_a_payload_changed_after_signing_is_refused():
    document = kit.bundle()
    document["payload"]["max_token_lifetime"] = 10**6
    with pytest.raises(BadSignature):
        verify_bundle(document, kit.roots(), now=kit.NOW)


def test_an_attacker_signature_under_a_pinned_roots_kid_is_refused():
    document = bundle_sign(
        kit.payload(), [(kit.kid(ROOT1), ROOT1), (kit.kid(ROOT2), kit.ATTACKER_KEY)]
    )
    with pytest.raises(BadSignature, match="#1"):
        verify_bundle(document, kit.roots(), now=kit.NOW)


def test_an_expired_bundle_is_refused():
    expires = kit.NOW + 24 * kit.HOUR
    assert verify_bundle(kit.bundle(), kit.roots(), now=expires - 1)
    with pytest.raises(ExpiredBundle):
        verify_bundle(kit.bundle(), kit.roots(), now=expires)


def test_a_bundle_issued_in_the_future_is_refused():
    assert verify_bundle(kit.bundle(issued_at=kit.NOW + 60), kit.roots(), now=kit.NOW)
    with pytest.raises(BundleNotYetValid):
        verify_bundle(kit.bundle(issued_at=kit.NOW + 61), kit.roots(), now=kit.NOW)


def test_a_bundle_older_than_the_required_version_is_refused():
    assert verify_bundle(kit.bundle(), kit.roots(), now=kit.NOW, min_version=7)
    with pytest.raises(StaleBundle):
        verify_bundle(kit.bundle(), kit.roots(), now=kit.NOW, min_version=8)


def test_duplicate_members_in_the_raw_bundle_are_refused():
    raw = kit.dumps(kit.bundle())
    raw = raw.replace(b'"version":7', b'"version":7,"version":9')
    with pytest.raises(MalformedBundle, match="duplicate"):
        verify_bundle(raw, kit.roots(), now=kit.NOW)


@pytest.mark.parametrize(
    "change",
    [
        {"version": True},
        {"version": 0},
        {"issuer": ""},
        {"expires_at": "tomorrow"},
        {"max_token_lifetime": -5},
        {"keys": {"kid": "x"}},
        {
            "keys": [
                {
                    "kid": "k",
                    "alg": "EdDSA",
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": "AAAA",
                    "not_before": 0,
                    "not_after": 1,
                }
            ]
        },
        {"keys": [kit.key_entry(), kit.key_entry()]},
        {"keys": [kit.key_entry(not_before=kit.NOW, not_after=kit.NOW - 1)]},
        {"revoked_jti": ["just-a-string"]},
        {"revoked_kids": [1]},
        {"type": "breakglass-roots"},
    ],
)
def test_a_signed_but_malformed_payload_is_refused(change):
    with pytest.raises(MalformedBundle):
        verify_bundle(kit.bundle(**change), kit.roots(), now=kit.NOW)


@pytest.mark.parametrize(
    "document",
    [
        b"",
        b"[]",
        b'{"payload":{}}',
        b'{"payload":{},"signatures":[],"extra":1}',
        b'{"payload":1.5,"signatures":[]}',
        b"\xff\xfe",
        b"[" * 50000,
        b'{"payload":{"a":NaN},"signatures":[{"kid":"k","alg":"EdDSA","sig":"AA"}]}',
    ],
)
def test_broken_bundle_documents_are_refused(document):
    with pytest.raises(MalformedBundle):
        verify_bundle(document, kit.roots(), now=kit.NOW)


def test_a_signature_entry_with_an_unexpected_algorithm_is_refused():
    document = kit.bundle()
    document["signatures"][0]["alg"] = "HS256"
    with pytest.raises(MalformedBundle):
        verify_bundle(document, kit.roots(), now=kit.NOW)


@pytest.mark.parametrize(
    "change",
    [
        {"threshold": 0},
        {"threshold": 4},
        {"threshold": True},
        {"threshold": "2"},
        {"type": "breakglass-trust-bundle"},
        {"keys": []},
        {"keys": [{"kid": "k", "kty": "RSA", "x": "AAAA"}]},
    ],
)
def test_a_broken_roots_file_is_refused(change):
    roots = {**kit.roots(), **change}
    with pytest.raises(MalformedRoots):
        verify_bundle(kit.bundle(), json.dumps(roots), now=kit.NOW)


def test_verifying_a_parsed_bundle_leaves_the_callers_document_untouched():
    document = kit.bundle()
    del document["payload"]["revoked_jti"], document["payload"]["revoked_kids"]
    document = bundle_sign(document["payload"], [(kit.kid(k), k) for k in (ROOT1, ROOT2)])
    before = json.dumps(document, sort_keys=True)
    bundle = verify_bundle(document, kit.roots(), now=kit.NOW)
    assert bundle.revoked_jti == frozenset() and bundle.revoked_kids == frozenset()
    assert json.dumps(document, sort_keys=True) == before
