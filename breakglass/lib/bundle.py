"""The signed trust bundle and the root file verifiers pin it against.

Bundle (JSON document):

    {"payload": {
        "type": "breakglass-trust-bundle",
        "version": 7,                        # only ever goes up
        "issuer": "https://breakglass.example",
        "issued_at": 1764000000, "expires_at": 1764086400,   # Unix seconds
        "max_token_lifetime": 14400,         # seconds; verifiers refuse longer-lived tokens
        "keys": [{"kid": "...", "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA",
                  "x": "<b64url raw public key>", "not_before": 1763..., "not_after": 1765...}],
        "revoked_jti": [{"jti": "...", "exp": 1764...}],   # revoked and not yet expired
        "revoked_kids": ["..."]},
     "signatures": [{"kid": "<root kid>", "alg": "EdDSA", "sig": "<b64url Ed25519 signature>"}]}

Each signature is Ed25519 over `canonical_json(payload)`. A bundle is valid when at least
`threshold` signatures from *distinct* root keys listed in the root file verify.

Roots file: {"type": "breakglass-roots", "threshold": 2,
             "keys": [{"kid": "...", "kty": "OKP", "crv": "Ed25519", "x": "..."}]}
"""

from __future__ import annotations

from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from breakglass.lib.b64 import b64url_encode
from breakglass.lib.canonical import canonical_json
from breakglass.lib.keys import key_thumbprint, public_x

BUNDLE_TYPE = "breakglass-trust-bundle"
ROOTS_TYPE = "breakglass-roots"


def jwk_entry(public_key, **extra) -> dict:
    entry = {"kty": "OKP", "crv": "Ed25519", "x": public_x(public_key)}
    entry.update(extra)
    return entry


def bundle_sign(payload: dict, signers: Iterable[tuple[str, Ed25519PrivateKey]]) -> dict:
    """Return the bundle document: `payload` plus one signature per (kid, root private key)."""
    message = canonical_json(payload)
    signatures = [
        {"kid": kid, "alg": "EdDSA", "sig": b64url_encode(key.sign(message))}
        for kid, key in signers
    ]
    return {"payload": payload, "signatures": signatures}


def roots_document(public_keys: Iterable, *, threshold: int) -> dict:
    keys = [jwk_entry(k, kid=key_thumbprint(k)) for k in public_keys]
    if not 1 <= threshold <= len(keys):
        raise ValueError(f"threshold {threshold} must be between 1 and {len(keys)}")
    return {"type": ROOTS_TYPE, "threshold": threshold, "keys": keys}
