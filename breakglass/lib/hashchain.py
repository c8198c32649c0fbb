"""The audit log's hash chain, with no Django in it so any tool can re-check an export.

Each event's hash is SHA-256 over the previous event's hash (hex), a newline, and the
canonical JSON of the event's own fields. Editing, deleting, inserting or reordering
any event changes every hash after it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from breakglass.lib.canonical import canonical_json

GENESIS_HASH = "0" * 64


def chain_hash(prev_hash: str, record: Mapping[str, object]) -> str:
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical_json(dict(record)))
    return digest.hexdigest()


class ChainBreak(Exception):
    def __init__(self, seq: int, reason: str):
        super().__init__(f"event {seq}: {reason}")
        self.seq = seq
        self.reason = reason


def verify_chain(events: Iterable[tuple[int, str, str, Mapping[str, object]]]) -> int:
    """Check `(seq, prev_hash, hash, record)` tuples in order; return how many were checked.

    Raises `ChainBreak` naming the first event that does not follow from its predecessor.
    """
    expected_prev = GENESIS_HASH
    expected_seq = None
    count = 0
    for seq, prev_hash, stored_hash, record in events:
        if expected_seq is not None and seq != expected_seq:
            raise ChainBreak(
                seq,
                f"sequence jumps from {expected_seq - 1} to {seq} (missing or reordered events)",
            )
        if prev_hash != expected_prev:
            raise ChainBreak(
                seq, "does not link to the previous event (deleted, inserted or reordered)"
            )
        if chain_hash(prev_hash, record) != stored_hash:
            raise ChainBreak(seq, "content does not match its hash (edited)")
        expected_prev = stored_hash
        expected_seq = seq + 1
        count += 1
    return count
