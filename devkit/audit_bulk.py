"""Many audit events, fast, for benchmarks (`bench/verify_audit.py`): appended to the real
chain with PostgreSQL's COPY, hashed exactly as `audit_flush` hashes them, under the
chain's lock, so the result is a chain `verify_audit` must find intact and that
`audit_record` goes on extending. Never used by the product.
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from breakglass.audit.models import AuditEvent
from breakglass.audit.services import _PG_LOCK_KEY
from breakglass.core.hashchain import GENESIS_HASH, chain_hash

# Shapes like the product's own events (a self-issue's three, a revocation, a drill step).
_ACTIONS = ("grant.self_issued", "token.minted", "grant.issued", "token.revoked", "drill.step")


def _event(n: int, actor: tuple[int, str] | None) -> dict:
    action = _ACTIONS[n % len(_ACTIONS)]
    return {
        "actor_id": actor[0] if actor else None,
        "actor_label": actor[1] if actor else "system",
        "action": action,
        "object_type": "breakglass.grant",
        "object_id": str(n // 3 + 1),
        "data": {
            "path": f"path-{n % 18}",
            "jti": f"{n:032x}",
            "scopes": ["read", "admin"],
            "lifetime_minutes": 30,
            "incident": f"INC-{n % 997:04d}",
            "reason": "bulk benchmark event é",  # one non-ASCII character, as real text has
            "emergency": n % 2 == 0,
        },
    }


def audit_events_bulk_append(*, count: int, actor=None, batch: int = 20_000) -> tuple[int, str]:
    """Append `count` events after the current head (PostgreSQL only); return the new head.

    Each batch is one transaction holding the chain's advisory lock from the head read
    to COMMIT, as `audit_flush` does, so concurrent writers cannot fork the chain.
    """
    if connection.vendor != "postgresql":
        raise RuntimeError("audit_events_bulk_append uses COPY: PostgreSQL only")
    who = (actor.pk, actor.get_username()) if actor is not None else None
    columns = ("prev_hash", "hash", *AuditEvent.CHAIN_COLUMNS)
    copy_sql = f"COPY {AuditEvent._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    written = 0
    head: tuple[int, str] = (0, GENESIS_HASH)
    while written < count:
        size = min(batch, count - written)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PG_LOCK_KEY])
            last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
            seq, prev_hash = last if last else (0, GENESIS_HASH)
            started = timezone.now()
            with cursor.cursor.copy(copy_sql) as copy:
                for i in range(size):
                    seq += 1
                    fields = _event(seq, who)
                    created_at = started + timedelta(microseconds=i)
                    record = AuditEvent.chain_record_of(seq, created_at, **fields)
                    digest = chain_hash(prev_hash, record)
                    copy.write_row(
                        (
                            prev_hash,
                            digest,
                            seq,
                            created_at,
                            fields["actor_id"],
                            fields["actor_label"],
                            fields["action"],
                            fields["object_type"],
                            fields["object_id"],
                            json.dumps(fields["data"], ensure_ascii=False),
                        )
                    )
                    prev_hash = digest
            head = (seq, prev_hash)
        written += size
    return head
