"""Writing to the audit log. Call `audit_record` inside the transaction of the action it
records, so the event exists exactly when the action does."""

from __future__ import annotations

import json
import os

from django.db import connection, models, transaction
from django.utils import timezone

from breakglass.audit.models import AuditEvent
from breakglass.core.canonical import canonical_json
from breakglass.core.hashchain import GENESIS_HASH, chain_hash

# Arbitrary constant naming the audit chain's advisory lock on PostgreSQL.
_PG_LOCK_KEY = 0x6272_6B67_6C61  # "brkgla"


def _lock_chain_head() -> None:
    """Serialise appends so two writers never both extend the same head (a fork).

    PostgreSQL: a transaction-scoped advisory lock; the next statement then reads the
    head committed by whoever held it before us (READ COMMITTED takes a new snapshot
    per statement). SQLite: the settings open every transaction IMMEDIATE, which takes
    the database write lock up front, so nothing more is needed.

    The lock is held until the caller's transaction ends, so audited actions commit one
    at a time. That is the price of a single unforked chain, and small next to the
    actions themselves. Callers must use READ COMMITTED (Django's default): under
    REPEATABLE READ the head read below could come from a snapshot older than the lock.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PG_LOCK_KEY])


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
    """Append one event to the chain, inside the caller's transaction (or its own).

    `data` must be canonical-JSON-able (str, int, bool, None, lists, dicts with string
    keys): a float or datetime raises `CanonicalError` before anything is written.
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
    with transaction.atomic():
        _lock_chain_head()
        head = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
        event = AuditEvent(
            seq=(head["seq"] + 1) if head else 1,
            created_at=timezone.now(),
            actor=actor,
            actor_label=label,
            action=action,
            object_type=object_type,
            object_id=str(object_id) if object_id != "" else "",
            data=data,
            prev_hash=head["hash"] if head else GENESIS_HASH,
        )
        event.hash = chain_hash(event.prev_hash, event.chain_record())
        event.save(force_insert=True)
    return event


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
