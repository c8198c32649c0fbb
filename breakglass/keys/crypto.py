"""Envelope encryption for private keys at rest: AES-256-GCM under the key-encryption key.

`settings.BREAKGLASS_KEK` is any high-entropy secret (the documented form is 32 random
bytes as urlsafe base64, e.g. `python -c "import secrets; print(secrets.token_urlsafe(32))"`).
The 32-byte AES key is derived from it with HKDF-SHA256, so an operator who pastes a
hex string, a longer passphrase or a base64 value with padding still gets a full-strength
key rather than a decode error or a silently truncated one.

Blob layout (all binary, version 1):

    b"BGK1" | kek_id (8 bytes) | nonce (12 bytes) | ciphertext + GCM tag (16 bytes)

`kek_id` is a non-secret fingerprint of the derived key. It lets a wrong KEK be reported
as exactly that, instead of as "corrupted data". The `context` (e.g. "signing-key:<kid>")
is the GCM associated data: a ciphertext copied onto another key's row does not decrypt.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

MAGIC = b"BGK1"
_HKDF_INFO = b"breakglass key-encryption key v1"
_AAD_PREFIX = b"breakglass-secret-v1\x00"
# A KEK shorter than this cannot hold 128 bits of entropy even as urlsafe base64.
MIN_KEK_LENGTH = 22


class SecretError(Exception):
    """A secret cannot be encrypted or decrypted; the message says why and what to check."""


def _kek_bytes() -> bytes:
    configured = settings.BREAKGLASS_KEK
    if not configured or len(configured.strip()) < MIN_KEK_LENGTH:
        raise SecretError(
            "BREAKGLASS_KEK is missing or too short: set it to 32 random bytes in urlsafe "
            "base64 (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return _kek_derive(configured.strip())


@functools.lru_cache(maxsize=4)
def _kek_derive(configured: str) -> bytes:
    # Derived once per configured KEK, not on every encryption (a pure function of it).
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        configured.encode("utf-8")
    )


def _kek_id(key: bytes) -> bytes:
    return hmac.new(key, b"breakglass kek id", hashlib.sha256).digest()[:8]


def _aad(context: str) -> bytes:
    if not context:
        raise ValueError("secret_encrypt/secret_decrypt need a non-empty context")
    return _AAD_PREFIX + context.encode("utf-8")


def secret_encrypt(plaintext: bytes, *, context: str) -> bytes:
    key = _kek_bytes()
    nonce = os.urandom(12)
    return MAGIC + _kek_id(key) + nonce + AESGCM(key).encrypt(nonce, plaintext, _aad(context))


def secret_decrypt(blob: bytes, *, context: str) -> bytes:
    blob = bytes(blob)
    if len(blob) < 4 + 8 + 12 + 16 or not blob.startswith(MAGIC):
        raise SecretError(f"the stored secret for {context!r} is not a Breakglass envelope")
    key = _kek_bytes()
    kek_id, nonce, ciphertext = blob[4:12], blob[12:24], blob[24:]
    if not hmac.compare_digest(kek_id, _kek_id(key)):
        raise SecretError(
            f"the secret for {context!r} was encrypted under a different BREAKGLASS_KEK: "
            "restore the key-encryption key this database was created with"
        )
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, _aad(context))
    except InvalidTag:
        raise SecretError(
            f"the secret for {context!r} failed its integrity check: the stored ciphertext was "
            "modified or moved from another key's row"
        ) from None


_DIGEST_INFO = b"breakglass keyed digest v1"


def secret_digest(value: bytes, *, context: str) -> str:
    """HMAC-SHA256 of `value` under a key derived from the KEK, as hex.

    For secrets that are only ever compared, never shown again (backup codes): a copy
    of the database without the KEK cannot test guesses offline, and a digest copied
    onto another row (another `context`) does not match there.
    """
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DIGEST_INFO).derive(
        _kek_bytes()
    )
    return hmac.new(key, _aad(context) + b"\x00" + value, hashlib.sha256).hexdigest()
