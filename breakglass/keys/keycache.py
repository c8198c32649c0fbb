"""Decrypted private keys kept in process memory for a bounded time, so signing a token
does not decrypt the issuer key from the KEK on every call.

Why this cannot sign with a key that is no longer usable, in any process: the cache only
memoizes the decryption. Its entries are keyed by exactly what the decryption depends on
(the key id, which is the envelope's context, the stored ciphertext, the configured KEK),
and every caller first reads the key's row in its own transaction and checks it there
(`issuer_key_signing` takes only the active issuer key, `ssh_certificate_issue` only an
active CA, `_server_signers` only active roots). A key revoked, retired or rotated out
by another process fails that check at the next call, whatever this cache holds; a
changed KEK or a rewritten ciphertext is a different entry, decrypted (or refused) anew.

Entries are dropped after `KEY_CACHE_SECONDS` and, in the process that made the change,
as soon as a key is rotated out, retired or revoked (`key_cache_forget`), so private key
material does not linger in memory longer than its use. Holding a decrypted key in
memory exposes nothing new: whoever can read this process's memory can read the KEK
in its settings and decrypt every key in the database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY_CACHE_SECONDS = 300

_clock = time.monotonic  # tests move it
_lock = threading.Lock()
_entries: dict[tuple[str, bytes, str], tuple[Ed25519PrivateKey, float]] = {}


def key_cache_get(
    *, kid: str, blob: bytes, kek: str, decrypt: Callable[[], Ed25519PrivateKey]
) -> Ed25519PrivateKey:
    """The private key `decrypt()` returns for this (kid, ciphertext, KEK), decrypted at
    most once per KEY_CACHE_SECONDS. A failing `decrypt` raises and caches nothing."""
    entry_key = (kid, blob, kek)
    now = _clock()
    with _lock:
        entry = _entries.get(entry_key)
        if entry is not None and entry[1] > now:
            return entry[0]
    private = decrypt()
    with _lock:
        # Drop expired entries while here: the cache holds a handful of keys at most.
        for stale in [k for k, (_, expires) in _entries.items() if expires <= now]:
            del _entries[stale]
        _entries[entry_key] = (private, now + KEY_CACHE_SECONDS)
    return private


def key_cache_forget(kid: str | None = None) -> None:
    """Drop the decrypted key `kid` (every key when None) from this process's memory."""
    with _lock:
        for entry_key in [k for k in _entries if kid is None or k[0] == kid]:
            del _entries[entry_key]


def key_cache_kids() -> set[str]:
    """The key ids whose private keys this process holds decrypted right now."""
    now = _clock()
    with _lock:
        return {k[0] for k, (_, expires) in _entries.items() if expires > now}
