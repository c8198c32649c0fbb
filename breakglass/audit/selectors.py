"""Reading the audit log: recent events for the console, and the chain's verification."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db.models import Q, QuerySet

from breakglass.audit.models import AuditEvent
from breakglass.core.hashchain import ChainBreak, export_line, verify_chain_head


@dataclass(frozen=True)
class ChainStatus:
    intact: bool
    count: int
    head_seq: int | None = None
    head_hash: str | None = None
    broken_seq: int | None = None
    reason: str = ""

    def __str__(self) -> str:
        if not self.intact:
            where = f"event {self.broken_seq}" if self.broken_seq is not None else "the log"
            return f"audit chain BROKEN at {where}: {self.reason}"
        if self.head_seq is None:
            return "audit chain intact: no events yet"
        return f"audit chain intact: {self.count} events, head #{self.head_seq} {self.head_hash}"


def _chain_tuples(events: QuerySet[AuditEvent]) -> Iterator[tuple[int, str, str, dict]]:
    for event in events.order_by("seq").iterator(chunk_size=2000):
        yield event.seq, event.prev_hash, event.hash, event.chain_record()


def audit_chain_verify(*, checkpoint: tuple[int, str] | None = None) -> ChainStatus:
    """Recompute every hash from the first event; name the first event that breaks.

    `checkpoint` is a (seq, hash) head recorded earlier outside the database: with it,
    deleting events from the end (which leaves a shorter but valid chain) is caught too.
    """
    try:
        count, head = verify_chain_head(
            _chain_tuples(AuditEvent.objects.all()), checkpoint=checkpoint
        )
    except ChainBreak as exc:
        return ChainStatus(intact=False, count=0, broken_seq=exc.seq, reason=exc.reason)
    return ChainStatus(
        intact=True,
        count=count,
        head_seq=head[0] if head else None,
        head_hash=head[1] if head else None,
    )


def audit_export_lines() -> Iterator[bytes]:
    """The whole log as JSON lines (one event per line), verifiable without Django by
    `python -m breakglass.core.hashchain FILE`."""
    for seq, prev_hash, digest, record in _chain_tuples(AuditEvent.objects.all()):
        yield export_line(seq, prev_hash, digest, record) + b"\n"


def audit_events_recent(
    *, action: str = "", actor: str = "", obj: str = "", limit: int = 100
) -> list[AuditEvent]:
    """Newest first, filtered by action prefix, actor username and object ("type" or
    "type:id" or just an id)."""
    events = AuditEvent.objects.order_by("-seq")
    if action:
        events = events.filter(action__startswith=action)
    if actor:
        events = events.filter(actor_label=actor)
    if obj:
        kind, sep, ident = obj.partition(":")
        if sep:
            events = events.filter(object_type=kind, object_id=ident)
        else:
            events = events.filter(Q(object_type=obj) | Q(object_id=obj))
    return list(events[:limit])


def audit_checkpoint_path() -> Path:
    return Path(settings.BREAKGLASS_AUDIT_CHECKPOINT_FILE)


def audit_checkpoint_latest() -> tuple[int, str] | None:
    """The last head recorded by `audit_checkpoint_record`, or None if there is none.
    A torn last line (a crash mid-write) is skipped in favour of the one before."""
    try:
        lines = audit_checkpoint_path().read_bytes().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        try:
            item = json.loads(line)
            return int(item["seq"]), str(item["hash"])
        except (ValueError, KeyError, TypeError):
            continue
    return None
