"""Writing to the audit log. Call `audit_record` inside the transaction of the action it
records, so the event exists exactly when the action does: it is appended to the chain
as that transaction's last statements before COMMIT (see `audit_flush`)."""

from __future__ import annotations

import json
import os

from django.db import models, transaction
from django.utils import timezone

from breakglass.audit.models import AuditEvent
from breakglass.core.canonical import canonical_json
from breakglass.core.hashchain import GENESIS_HASH, chain_hash

# Arbitrary constant naming the audit chain's advisory lock on PostgreSQL.
_PG_LOCK_KEY = 0x6272_6B67_6C61  # "brkgla"

# The events recorded in the current transaction, waiting for its commit. Each entry
# keeps the savepoints open when it was recorded, so rolling one back drops its events.
_PENDING = "breakglass_audit_pending"


def _pending(conn) -> list[tuple[tuple[str, ...], AuditEvent]]:
    pending = conn.__dict__.get(_PENDING)
    if pending is None:
        pending = conn.__dict__[_PENDING] = []
    return pending


def _caller_owns_no_transaction(conn) -> bool:
    """True outside any transaction, and in a test whose only transactions are the test
    case's own (those never commit, so they stand for autocommit)."""
    return all(getattr(block, "_from_testcase", False) for block in conn.atomic_blocks)


def audit_record(
    *,
    action: str,
    actor=None,
    actor_label: str | None = None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    data: dict | None = None,
) -> AuditEvent:
    """Record one event in the caller's transaction; it joins the chain when that
    transaction commits (or in a transaction of its own, called outside one).

    The returned event gets its `seq` and `hash` at that commit. `data` must be
    canonical-JSON-able (str, int, bool, None, lists, dicts with string keys): a float or
    datetime raises `CanonicalError` before anything is written.
    """
    # Round-trip through canonical JSON now, so the hash covers exactly what the JSON
    # column stores and reads back (tuples become lists, keys are strings).
    data = json.loads(canonical_json(data or {}))
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    label = actor_label or (actor.get_username() if actor is not None else "system")
    event = AuditEvent(
        actor=actor,
        actor_label=label,
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id != "" else "",
        data=data,
    )
    conn = transaction.get_connection()
    if _caller_owns_no_transaction(conn):
        with transaction.atomic():
            _pending(conn).append((tuple(conn.savepoint_ids), event))
    else:
        _pending(conn).append((tuple(conn.savepoint_ids), event))
    return event


def audit_flush(conn, *, before_commit: bool = True) -> None:
    """Append the transaction's recorded events to the chain: the last statements before
    COMMIT. Called by the commit hook (`breakglass.audit.hooks`), never by services.

    The lock order (docs/dev/locking.md): a transaction takes its row locks first, and
    the chain's lock last, only here. Before taking it, `SET CONSTRAINTS ALL IMMEDIATE`
    runs the foreign-key checks Django defers to COMMIT, and the actors' rows are locked
    FOR KEY SHARE, so that from the moment the chain lock is held until COMMIT this
    transaction waits for no other lock. A waiter for the chain lock can therefore never
    be waited for by its holder: no deadlock goes through this lock, and it is held for
    a few milliseconds whatever the transaction did before (minting, notifications).

    PostgreSQL: a transaction-scoped advisory lock; the next statement then reads the
    head committed by whoever held it before us (READ COMMITTED takes a new snapshot per
    statement; callers must not use REPEATABLE READ). SQLite: the settings open every
    transaction IMMEDIATE, which takes the database write lock up front.
    """
    pending = conn.__dict__.get(_PENDING)
    if not pending:
        return
    events = [event for _, event in pending]
    pending.clear()
    if conn.vendor == "postgresql":
        head = _lock_chain_and_read_head(conn, events)
    else:
        head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, prev_hash = head if head else (0, GENESIS_HASH)
    now = timezone.now()
    for event in events:
        seq += 1
        event.seq = seq
        event.created_at = now
        event.prev_hash = prev_hash
        event.hash = prev_hash = chain_hash(event.prev_hash, event.chain_record())
    AuditEvent.objects.bulk_create(events)
    if conn.vendor == "postgresql" and not before_commit:
        # The transaction goes on (a test's): give Django's foreign keys back their
        # deferred checking.
        with conn.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def _lock_chain_and_read_head(conn, events: list[AuditEvent]) -> tuple[int, str] | None:
    """PostgreSQL: the deferred checks, the actors' KEY SHARE locks, the chain lock, then
    the head, in that order and in one round trip when the cursor binds parameters on
    the client (Django's default): each statement of a multi-statement query still takes
    its own snapshot, so the head is read after the lock is granted."""
    meta = AuditEvent._meta
    users = meta.get_field("actor").related_model._meta
    actors = sorted({event.actor_id for event in events if event.actor_id})
    statements: list[tuple[str, list]] = [("SET CONSTRAINTS ALL IMMEDIATE", [])]
    if actors:
        statements.append(
            (
                f'SELECT 1 FROM "{users.db_table}" WHERE "{users.pk.column}" = ANY(%s) '  # noqa: S608 - names from the model
                "FOR KEY SHARE",
                [actors],
            )
        )
    statements.append(("SELECT pg_advisory_xact_lock(%s)", [_PG_LOCK_KEY]))
    statements.append(
        (f'SELECT "seq", "hash" FROM "{meta.db_table}" ORDER BY "seq" DESC LIMIT 1', [])  # noqa: S608
    )
    with conn.cursor() as cursor:
        if conn.settings_dict["OPTIONS"].get("server_side_binding"):
            for sql, params in statements:
                cursor.execute(sql, params)
        else:
            cursor.execute(
                "; ".join(sql for sql, _ in statements),
                [param for _, params in statements for param in params],
            )
            while cursor.nextset():
                pass
        return cursor.fetchone()


def audit_discard(conn, *, savepoint: str | None = None) -> None:
    """Forget recorded events on rollback: all of them, or those inside one savepoint."""
    pending = conn.__dict__.get(_PENDING)
    if not pending:
        return
    if savepoint is None:
        pending.clear()
    else:
        pending[:] = [entry for entry in pending if savepoint not in entry[0]]


class CheckpointRefused(Exception):
    """The chain in the database no longer extends a head recorded earlier: someone
    rewrote history. The checkpoint task refuses to witness it."""


def audit_checkpoint_record() -> tuple[int, str] | None:
    """Append the chain's current head to the checkpoint file, outside the database.

    A shorter chain is still a valid chain, so deleting the newest events leaves no trace
    in the database itself. The checkpoint file is the witness: `verify_audit` checks
    that every head written here still exists with the same hash. Point
    `BREAKGLASS_AUDIT_CHECKPOINT_FILE` at storage the database owner cannot rewrite
    (another host, an append-only mount). Returns the head, or None for an empty log.

    A witness must never vouch for a forgery: if the head does not extend every earlier
    checkpoint (events cut out of the middle and the rest re-chained, or the tail cut
    off), nothing is appended; the alarm is recorded in the chain, the security contacts
    are e-mailed, and `CheckpointRefused` is raised.
    """
    from breakglass.audit.selectors import (
        audit_checkpoint_path,
        audit_checkpoint_violation,
        audit_checkpoints_all,
    )

    checkpoints = audit_checkpoints_all()
    violation = audit_checkpoint_violation(checkpoints=checkpoints)
    if violation is not None:
        _checkpoint_alarm(checkpoint=violation[0], reason=violation[1])
        raise CheckpointRefused(
            f"audit checkpoint refused: {violation[1]}; the security contacts were alerted"
        )
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    if head is None or (checkpoints and checkpoints[-1] == tuple(head)):
        return tuple(head) if head else None
    line = canonical_json({"seq": head[0], "hash": head[1], "at": timezone.now().isoformat()})
    path = audit_checkpoint_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:
        fh.write(line + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    return tuple(head)


def _checkpoint_alarm(*, checkpoint: tuple[int, str], reason: str) -> None:
    """Record and e-mail the alarm once per violated checkpoint (the task runs every few
    minutes; one message per forgery is enough, and the outbox key makes it so)."""
    from django.conf import settings

    from breakglass.outbox.services import outbox_enqueue

    seq, digest = checkpoint
    with transaction.atomic():
        already = AuditEvent.objects.filter(
            action="audit.checkpoint_refused",
            data__checkpoint_seq=seq,
            data__checkpoint_hash=digest,
        ).exists()
        if not already:
            audit_record(
                action="audit.checkpoint_refused",
                data={"checkpoint_seq": seq, "checkpoint_hash": digest, "reason": reason},
            )
        body = "\n".join(
            [
                "The audit chain in the database no longer contains a head recorded earlier",
                "outside it. Someone with access to the database has rewritten history.",
                "",
                f"Checkpoint: #{seq} {digest}",
                f"Finding: {reason}",
                "",
                "No further checkpoints will be written until this is resolved. Compare the",
                "database with a recent export and the trust bundles on your hosts:",
                "    python manage.py verify_audit --witness bundle.json",
                f"{settings.BREAKGLASS_BASE_URL}/audit/",
            ]
        )
        for email in dict.fromkeys(settings.BREAKGLASS_SECURITY_CONTACTS):
            outbox_enqueue(
                kind="email",
                idempotency_key=f"audit.checkpoint_refused:{seq}:{digest}:{email}",
                recipient=email,
                source=f"audit.checkpoint:{seq}",
                payload={
                    "subject": f"[Breakglass] ALERT: audit log rewritten (checkpoint #{seq})",
                    "body": body,
                    "to": [email],
                },
            )
