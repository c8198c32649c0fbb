"""The audit log's hash chain, with no Django in it so any tool can re-check an export.

Each event's hash is SHA-256 over the previous event's hash (hex), a newline, and the
canonical JSON of the event's own fields. Editing, deleting, inserting or reordering
any event changes every hash after it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from collections.abc import Iterable, Iterator, Mapping

from breakglass.core.canonical import CanonicalError, canonical_json, canonical_json_unchecked

GENESIS_HASH = "0" * 64


def chain_hash(prev_hash: str, record: Mapping[str, object]) -> str:
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical_json(dict(record)))
    return digest.hexdigest()


def _chain_hash_matches(prev_hash: str, record: Mapping[str, object], stored_hash: str) -> bool:
    """`chain_hash(prev_hash, record) == stored_hash`, in the time a verifier has.

    Fast path: encode without the canonical checks. Equal bytes mean the record is the
    one hashed when it was written, which was checked then. Only on a mismatch is the
    checked encoding tried; a record it refuses (a float, an unsafe integer, edited in
    the database) cannot be what was hashed, so it does not match either.
    """
    try:
        encoded = prev_hash.encode("ascii") + b"\n" + canonical_json_unchecked(record)
        if hashlib.sha256(encoded).hexdigest() == stored_hash:
            return True
    except (ValueError, TypeError):
        pass
    try:
        return chain_hash(prev_hash, record) == stored_hash
    except (CanonicalError, ValueError, TypeError):
        return False


class ChainBreak(Exception):
    """The first event that does not follow from its predecessor (`seq` None: unreadable)."""

    def __init__(self, seq: int | None, reason: str):
        super().__init__(f"event {seq}: {reason}" if seq is not None else reason)
        self.seq = seq
        self.reason = reason


def verify_chain(
    events: Iterable[tuple[int, str, str, Mapping[str, object]]],
    *,
    start: tuple[int, str] | None = None,
) -> int:
    """Check `(seq, prev_hash, hash, record)` tuples in order; return how many were checked.

    `start` (seq, hash) checks a segment that must continue from that event instead of
    from the genesis. Raises `ChainBreak` naming the first event that does not follow
    from its predecessor.
    """
    expected_prev = start[1] if start else GENESIS_HASH
    expected_seq = start[0] + 1 if start else None
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
        if not _chain_hash_matches(prev_hash, record, stored_hash):
            raise ChainBreak(seq, "content does not match its hash (edited)")
        expected_prev = stored_hash
        expected_seq = seq + 1
        count += 1
    return count


def export_line(seq: int, prev_hash: str, digest: str, record: Mapping[str, object]) -> bytes:
    """One event of a JSON-lines export: its seq, both hashes and the hashed record."""
    return canonical_json({"seq": seq, "prev_hash": prev_hash, "hash": digest, "record": record})


def read_export(lines: Iterable[bytes | str]) -> Iterator[tuple[int, str, str, dict]]:
    """Parse an export back into `verify_chain` tuples; a malformed line is a ChainBreak."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            yield int(item["seq"]), item["prev_hash"], item["hash"], item["record"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ChainBreak(None, f"line {number} is not an exported event ({exc})") from None


def main(argv: list[str] | None = None) -> int:
    """`python -m breakglass.core.hashchain EXPORT.jsonl [--head SEQ:HASH]`: re-check an
    export anywhere, with nothing but Python. Exit 0 when intact, 1 when broken, 2 on usage."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m breakglass.core.hashchain",
        description="Verify an exported Breakglass audit log (JSON lines).",
    )
    parser.add_argument("export", help="file written by `manage.py export_audit`, or - for stdin")
    parser.add_argument(
        "--head",
        action="append",
        default=[],
        help="SEQ:HASH recorded earlier (repeatable); fails if that event is missing or "
        "differs (truncation)",
    )
    args = parser.parse_args(argv)
    try:
        checkpoints = [parse_checkpoint(text) for text in args.head]
    except ValueError as exc:
        parser.error(str(exc))
    try:
        stream = sys.stdin.buffer if args.export == "-" else open(args.export, "rb")  # noqa: SIM115
    except OSError as exc:
        print(f"cannot read {args.export}: {exc}", file=sys.stderr)
        return 2
    with stream:
        try:
            count, head = verify_chain_head(read_export(stream), checkpoints=checkpoints)
        except ChainBreak as exc:
            print(f"BROKEN: {exc}")
            return 1
    print(f"OK: {count} events, head #{head[0]} {head[1]}" if head else "OK: empty log")
    return 0


def parse_checkpoint(text: str) -> tuple[int, str]:
    """`"42:ab12..."` -> (42, "ab12..."); ValueError with a human message otherwise."""
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64 or set(digest) - set("0123456789abcdef"):
        raise ValueError(f"checkpoint must look like SEQ:SHA256HEX, got {text!r}")
    return int(seq), digest


def verify_chain_head(
    events: Iterable[tuple[int, str, str, Mapping[str, object]]],
    *,
    checkpoint: tuple[int, str] | None = None,
    checkpoints: Iterable[tuple[int, str]] = (),
) -> tuple[int, tuple[int, str] | None]:
    """Like `verify_chain`, and also return the head (seq, hash) and check checkpoints.

    A chain cannot show that its own tail was cut off: the shorter chain is still valid.
    A checkpoint (a head seen earlier, kept outside the database) closes that gap: the
    event it names must still exist with the same hash. Every checkpoint is checked, not
    only the newest: a forger who cuts events out and re-chains the rest may get a
    checkpoint written for the forged head, but every earlier one still names the truth.
    """
    expected: dict[int, set[str]] = {}
    for seq, digest in [*([checkpoint] if checkpoint is not None else []), *checkpoints]:
        expected.setdefault(seq, set()).add(digest)
    head: list = [None]

    def tracking():
        for event in events:
            seq, _, digest, _ = event
            head[0] = (seq, digest)
            for recorded in sorted(expected.get(seq, ())):
                if not hmac.compare_digest(digest, recorded):
                    raise ChainBreak(seq, "differs from the recorded checkpoint (rewritten)")
            yield event

    count = verify_chain(tracking())
    last = head[0][0] if head[0] else 0
    beyond = [seq for seq in expected if seq > last]
    if beyond:
        raise ChainBreak(
            max(beyond),
            f"missing: the log ends at event {last} but a checkpoint recorded event "
            f"{max(beyond)} (deleted from the end)",
        )
    return count, head[0]


if __name__ == "__main__":
    sys.exit(main())
