"""Ed25519 public keys as Breakglass writes them: the JWK `x` member and the RFC 7638
thumbprint every `kid` must equal. One strict decoder, shared by the verifier (roots
file, bundle keys) and the server (stored keys, offline root tool).

No `hashlib` and no `serialization` import: both cost the verifier's start-up time.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from breakglass.core.b64 import Base64Error, b64url_decode, b64url_encode


class KeyDecodeError(ValueError):
    """The `x` member is not a valid Ed25519 public key; the message says why."""


def _sha256(data: bytes):
    # hashlib loads OpenSSL's libcrypto bindings (~4 ms), a large share of the CLI's start
    # budget; CPython's built-in SHA-256 gives the same digest. hashlib is the fallback.
    try:
        from _sha2 import sha256  # CPython >= 3.12
    except ImportError:
        try:
            from _sha256 import sha256  # CPython 3.11
        except ImportError:
            from hashlib import sha256
    return sha256(data)


def sha256_hex(data: bytes) -> str:
    return _sha256(data).hexdigest()


def jwk_thumbprint(x: str) -> str:
    """RFC 7638 JWK thumbprint of the Ed25519 key whose JWK `x` member is `x`."""
    jwk = '{"crv":"Ed25519","kty":"OKP","x":"' + x + '"}'
    return b64url_encode(_sha256(jwk.encode("ascii")).digest())


def public_key_decode(x: object) -> tuple[Ed25519PublicKey, bytes]:
    """Decode a JWK `x` member strictly into (public key, its 32 raw bytes).

    Refuses anything but the one canonical spelling of exactly 32 bytes, so one key
    cannot appear under two spellings (and two thumbprints).
    """
    if type(x) is not str or not 0 < len(x) <= 64:
        raise KeyDecodeError("x must be a base64url string")
    try:
        raw = b64url_decode(x)
    except Base64Error:
        raise KeyDecodeError("x is not base64url") from None
    if len(raw) != 32 or b64url_encode(raw) != x:
        raise KeyDecodeError("x must encode exactly 32 bytes")
    try:
        return Ed25519PublicKey.from_public_bytes(raw), raw
    except ValueError:
        raise KeyDecodeError("x is not an Ed25519 public key") from None


def public_from_x(x: str) -> Ed25519PublicKey:
    return public_key_decode(x)[0]


def public_raw(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes_raw()


def public_x(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The JWK `x` member: unpadded base64url of the 32 raw public key bytes (RFC 8037)."""
    return b64url_encode(public_raw(key))


def key_thumbprint(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """RFC 7638 JWK thumbprint of a key object, used as its key ID."""
    return jwk_thumbprint(public_x(key))
