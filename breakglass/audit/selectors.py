"""Reading the audit log: recent events for the console, and the chain's verification."""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast

from breakglass.audit.models import AuditEvent
from breakglass.core.hashchain import ChainBreak, export_line, verify_chain, verify_chain_head


def audit_read_allowed(*, user) -> bool:
    """Who may read the log and export it: staff (auditors) and whoever holds
    `audit.view_auditevent`, so the roles table (`accounts.roles.ROLE_PERMISSIONS`:
    administrators, approvers reviewing use, incident commanders) decides, not a second
    list here. The console's guard and its navigation both ask this."""
    return bool(user.is_active and (user.is_staff or user.has_perm("audit.view_auditevent")))


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


# Rows per fetch from the server-side cursor: memory stays flat however long the log is.
CHAIN_READ_CHUNK = 5000


# PostgreSQL: the creation time as whole microseconds since the epoch (exact on every
# version), and the data as its JSON text. Parsing timestamp text into datetimes was
# most of what reading the log cost; the record is still built from a datetime.
_PG_CREATED_US = (
    "(EXTRACT(EPOCH FROM date_trunc('second', {column}))::bigint * 1000000"
    " + EXTRACT(MICROSECONDS FROM {column})::bigint %% 1000000)"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _chain_tuples(events: QuerySet[AuditEvent]) -> Iterator[tuple[int, str, str, dict]]:
    """(seq, prev_hash, hash, record) per event in order, streamed from a server-side
    cursor CHAIN_READ_CHUNK rows at a time (memory stays flat however long the log is),
    without building model instances."""
    record_of = AuditEvent.chain_record_of
    events = events.order_by("seq")
    if connection.vendor != "postgresql":
        rows = events.values_list("prev_hash", "hash", *AuditEvent.CHAIN_COLUMNS)
        for prev_hash, digest, *columns in rows.iterator(chunk_size=CHAIN_READ_CHUNK):
            yield columns[0], prev_hash, digest, record_of(*columns)
        return
    column = f'"{AuditEvent._meta.db_table}"."created_at"'
    rows = events.annotate(
        created_us=RawSQL(_PG_CREATED_US.format(column=column), ()),  # noqa: S611 - constant
        data_text=Cast("data", TextField()),
    ).values_list(
        "prev_hash",
        "hash",
        *(
            "created_us" if c == "created_at" else "data_text" if c == "data" else c
            for c in AuditEvent.CHAIN_COLUMNS
        ),
    )
    loads, epoch = json.loads, _EPOCH
    for prev_hash, digest, seq, created_us, *middle, data in rows.iterator(
        chunk_size=CHAIN_READ_CHUNK
    ):
        created_at = epoch + timedelta(microseconds=created_us)
        yield seq, prev_hash, digest, record_of(seq, created_at, *middle, loads(data))


def _chain_tuples_from(seq: int) -> Iterator[tuple[int, str, str, dict]]:
    return _chain_tuples(AuditEvent.objects.filter(seq__gt=seq))


def audit_chain_verify(
    *,
    checkpoint: tuple[int, str] | None = None,
    checkpoints: Iterable[tuple[int, str]] = (),
) -> ChainStatus:
    """Recompute every hash from the first event; name the first event that breaks.

    `checkpoint`/`checkpoints` are (seq, hash) heads recorded earlier outside the
    database (the checkpoint file, trust bundles on other hosts): the chain must still
    contain every one of them, so deleting events from the end or the middle (and
    re-chaining the rest) is caught too.
    """
    try:
        count, head = verify_chain_head(
            _chain_tuples(AuditEvent.objects.all()),
            checkpoint=checkpoint,
            checkpoints=checkpoints,
        )
    except ChainBreak as exc:
        return ChainStatus(intact=False, count=0, broken_seq=exc.seq, reason=exc.reason)
    return ChainStatus(
        intact=True,
        count=count,
        head_seq=head[0] if head else None,
        head_hash=head[1] if head else None,
    )


def audit_head() -> tuple[int, str] | None:
    """The newest event's (seq, hash), or None for an empty log."""
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    return tuple(head) if head else None


def audit_head_present(*, head: tuple[int, str]) -> bool:
    """Whether the event at `head`'s seq still has `head`'s hash (the rest of the chain's
    integrity is `audit_chain_verify`'s job)."""
    stored = AuditEvent.objects.filter(seq=head[0]).values_list("hash", flat=True).first()
    return stored is not None and hmac.compare_digest(stored, head[1])


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


def audit_checkpoints_all() -> list[tuple[int, str]]:
    """Every head recorded by `audit_checkpoint_record`, oldest first. A torn line (a
    crash mid-write) is skipped."""
    try:
        lines = audit_checkpoint_path().read_bytes().splitlines()
    except FileNotFoundError:
        return []
    heads = []
    for line in lines:
        try:
            item = json.loads(line)
            heads.append((int(item["seq"]), str(item["hash"])))
        except (ValueError, KeyError, TypeError):
            continue
    return heads


def audit_checkpoint_latest() -> tuple[int, str] | None:
    """The last head recorded by `audit_checkpoint_record`, or None if there is none.
    A torn last line (a crash mid-write) is skipped in favour of the one before."""
    heads = audit_checkpoints_all()
    return heads[-1] if heads else None


def audit_checkpoint_violation(
    *, checkpoints: list[tuple[int, str]]
) -> tuple[tuple[int, str], str] | None:
    """The first recorded checkpoint that the chain in the database no longer extends,
    with the reason, or None when the current head extends every one of them.

    Cheap enough for every checkpoint run: it reads the events at the checkpoints' seqs
    and re-links only the events after the newest checkpoint. What lies before that
    checkpoint is fixed by its hash (rewriting it would need a SHA-256 collision) and is
    re-checked in full by `verify_audit`.
    """
    if not checkpoints:
        return None
    stored = dict(
        AuditEvent.objects.filter(seq__in={seq for seq, _ in checkpoints}).values_list(
            "seq", "hash"
        )
    )
    last_seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    for seq, digest in checkpoints:
        if seq > last_seq:
            return (seq, digest), (
                f"the log ends at event {last_seq} but checkpoint #{seq} was recorded earlier "
                "(events deleted)"
            )
        if seq not in stored or not hmac.compare_digest(stored[seq], digest):
            return (seq, digest), (
                f"event {seq} no longer has the hash checkpoint #{seq} recorded (rewritten)"
            )
    newest = max(checkpoints)
    try:
        verify_chain(
            _chain_tuples_from(newest[0]),
            start=(newest[0], newest[1]),
        )
    except ChainBreak as exc:
        return newest, f"the events after checkpoint #{newest[0]} do not link to it: {exc}"
    return None
