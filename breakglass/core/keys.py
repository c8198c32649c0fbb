"""Ed25519 key helpers shared by the server and the verifier: key IDs and raw encodings."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from breakglass.core.b64 import b64url_decode, b64url_encode


def public_raw(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_x(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The JWK `x` member: unpadded base64url of the 32 raw public key bytes (RFC 8037)."""
    return b64url_encode(public_raw(key))


def public_from_x(x: str) -> Ed25519PublicKey:
    raw = b64url_decode(x)
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def key_thumbprint(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """RFC 7638 JWK thumbprint, used as the default key ID."""
    jwk = '{"crv":"Ed25519","kty":"OKP","x":"' + public_x(key) + '"}'
    return b64url_encode(hashlib.sha256(jwk.encode("ascii")).digest())
