"""Deterministic keys, bundles and tokens for the verifier tests and golden vectors.

Built with `breakglass.core` only (the same code the server uses to mint and sign), with
Ed25519 keys derived from fixed labels, so every run produces byte-identical documents.
"""

from __future__ import annotations

import hashlib
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from breakglass.core.jws import jws_sign
from breakglass.core.keys import key_thumbprint
from breakglass.core.signing import bundle_sign, jwk_entry, roots_document

NOW = 1767225600  # 2026-01-01T00:00:00Z
ISSUER = "https://breakglass.example"
AUDIENCE = "sso"
HOUR = 3600


def seeded_key(label: str) -> Ed25519PrivateKey:
    """An Ed25519 private key whose 32-byte seed is SHA-256 of `label`."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())


ROOT_KEYS = [seeded_key(f"breakglass-test-root-{n}") for n in (1, 2, 3)]
ISSUER_KEY = seeded_key("breakglass-test-issuer-1")
ISSUER_KID = key_thumbprint(ISSUER_KEY)
ATTACKER_KEY = seeded_key("breakglass-test-attacker")


def kid(key: Ed25519PrivateKey) -> str:
    return key_thumbprint(key)


def roots(threshold: int = 2, keys=None) -> dict:
    return roots_document([k.public_key() for k in (keys or ROOT_KEYS)], threshold=threshold)


def key_entry(
    key=ISSUER_KEY, *, not_before=NOW - 30 * 24 * HOUR, not_after=NOW + 30 * 24 * HOUR, **extra
):
    entry = jwk_entry(
        key.public_key(), kid=kid(key), alg="EdDSA", not_before=not_before, not_after=not_after
    )
    entry.update(extra)
    return entry


def payload(**overrides) -> dict:
    document = {
        "type": "breakglass-trust-bundle",
        "version": 7,
        "issuer": ISSUER,
        "issued_at": NOW - HOUR,
        "expires_at": NOW + 24 * HOUR,
        "max_token_lifetime": 4 * HOUR,
        "keys": [key_entry()],
        "revoked_jti": [{"jti": "revoked-jti-0001", "exp": NOW + HOUR}],
        "revoked_kids": [],
    }
    document.update(overrides)
    return document


def bundle(signers=None, **overrides) -> dict:
    """A bundle signed by roots 1 and 2 (exactly the default threshold)."""
    if signers is None:
        signers = ROOT_KEYS[:2]
    return bundle_sign(payload(**overrides), [(kid(k), k) for k in signers])


def claims(**overrides) -> dict:
    document = {
        "iss": ISSUER,
        "sub": "rita-responder",
        "aud": AUDIENCE,
        "iat": NOW - 60,
        "nbf": NOW - 60,
        "exp": NOW + HOUR,
        "jti": "4f1c2a9e-0000-4000-8000-000000000001",
        "scope": "ssh:login admin",
        "path": "sso-backup-ssh",
        "incident": "INC-2026-0042",
        "approvers": ["alex-approver", "bea-approver"],
        "drill": False,
        "emergency": True,
    }
    document.update(overrides)
    return {k: v for k, v in document.items() if v is not None}


def token(key=ISSUER_KEY, key_id=None, **overrides) -> str:
    return jws_sign(claims(**overrides), private_key=key, kid=key_id or kid(key))


def dumps(document) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


# --- The sealed offline kit (breakglass/core/kit.py) ----------------------------------------

KIT_KEY = seeded_key("breakglass-test-kit-1")
KIT_ID = "kit-test"


def kit_payload(key=KIT_KEY, **overrides) -> dict:
    """A kit covering sso (ssh:login), 60-minute tokens, 2-of-3, valid a year around NOW.
    The share digests are placeholders: verifiers never look at them."""
    from breakglass.core.kit import kit_payload as build

    options = dict(
        kit_id=KIT_ID,
        issuer=ISSUER,
        public_key=key.public_key(),
        audiences=["sso"],
        scopes=["ssh:login"],
        max_lifetime=HOUR,
        threshold=2,
        custodians=[(name, "digest-" + name) for name in ("Alice", "Bob", "Carol")],
        share_set=1234,
        not_before=NOW - 30 * 24 * HOUR,
        not_after=NOW + 365 * 24 * HOUR,
    )
    payload = build(**options)
    payload.update(overrides)
    return payload


def kit_document(signers=None, **overrides) -> dict:
    return bundle_sign(kit_payload(**overrides), [(kid(k), k) for k in signers or ROOT_KEYS[:2]])


def kit_claims(**overrides) -> dict:
    document = claims(
        scope="ssh:login",
        path="kit:" + KIT_ID,
        incident=None,
        approvers=["Alice", "Carol"],
        kit=KIT_ID,
        exp=NOW + HOUR - 60,  # exactly the kit's one-hour cap
    )
    document.update(overrides)
    return {k: v for k, v in document.items() if v is not None}


def kit_token(key=KIT_KEY, **overrides) -> str:
    return jws_sign(kit_claims(**overrides), private_key=key, kid=kid(key))
