"""The transactional outbox: enqueue side effects inside the action's transaction,
deliver them afterwards from Celery, and sweep up anything a lost task left behind."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from breakglass.audit.services import audit_record
from breakglass.outbox.handlers import PermanentFailure, handler_for
from breakglass.outbox.models import OutboxMessage
from breakglass.project.heartbeat import lease_heartbeat
from breakglass.project.progress import progress_session

log = logging.getLogger(__name__)

# A row claimed and not renewed for this long belongs to a dead worker: the delivering
# worker renews `claimed_at` every CLAIM_RENEW_EVERY while the handler runs.
CLAIM_LEASE = timedelta(seconds=30)
CLAIM_RENEW_EVERY = CLAIM_LEASE / 3


def backoff(attempts: int) -> timedelta:
    """Exponential back-off: 10s, 20s, 40s ... capped at one hour."""
    return timedelta(seconds=min(10 * 2 ** max(attempts - 1, 0), 3600))


def outbox_enqueue(
    *,
    kind: str,
    idempotency_key: str,
    payload: dict,
    recipient: str = "",
    source: str = "",
    max_attempts: int = 8,
    deliver_after: timedelta | None = None,
) -> OutboxMessage | None:
    """Add a side effect to the current transaction. Returns None if the key already exists.

    The Celery task is sent only after commit, and a broker outage there is logged, not
    raised: the action has already committed and the sweep will deliver the row.

    `deliver_after` leaves the row to someone who delivers it inline meanwhile
    (`outbox_deliver_many(..., due_only=False)`, a drill's notify step); the workers and
    the sweep take it only once that time has passed.
    """
    [message] = outbox_enqueue_many(
        [
            {
                "kind": kind,
                "idempotency_key": idempotency_key,
                "payload": payload,
                "recipient": recipient,
                "source": source,
                "max_attempts": max_attempts,
            }
        ],
        deliver_after=deliver_after,
    )
    return message


def outbox_enqueue_many(
    rows: list[dict], *, deliver_after: timedelta | None = None
) -> list[OutboxMessage | None]:
    """`outbox_enqueue` for several rows at once, in one statement: each dict holds its
    keyword arguments (kind, idempotency_key, payload, and optionally recipient, source,
    max_attempts). Returns, in order, each new row, or None for a key that already existed
    (or came earlier in `rows`)."""
    now = timezone.now()
    messages = [
        OutboxMessage(**row, next_attempt_at=now + deliver_after if deliver_after else now)
        for row in rows
    ]
    first_of_key = {}
    for message in messages:
        first_of_key.setdefault(message.idempotency_key, message)
    ids = _insert_unless_exist(list(first_of_key.values()))
    created: list[OutboxMessage | None] = []
    for message in messages:
        pk = ids.get(message.idempotency_key)
        if pk is None or first_of_key[message.idempotency_key] is not message:
            created.append(None)
            continue
        message.pk = pk
        message._state.adding = False
        if not deliver_after:
            _dispatch_after_commit(message.pk)
        created.append(message)
    return created


def _insert_unless_exist(messages: list[OutboxMessage]) -> dict[str, int]:
    """INSERT ... VALUES (...), (...) ON CONFLICT (idempotency_key) DO NOTHING RETURNING:
    {key: id} of the rows it created; a key that existed is left out. One statement, where
    a savepoint around a plain INSERT per row (to survive its IntegrityError) took three
    each: a transaction that notifies five people paid fifteen round trips for it."""
    if not messages:
        return {}
    meta = OutboxMessage._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    values = [
        field.get_db_prep_save(field.pre_save(message, add=True), connection)
        for message in messages
        for field in fields
    ]
    q = connection.ops.quote_name
    columns = ", ".join(q(field.column) for field in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    statement = (
        f"INSERT INTO {q(meta.db_table)} ({columns}) VALUES {', '.join([row] * len(messages))} "  # noqa: S608 - names from the model
        f"ON CONFLICT ({q('idempotency_key')}) DO NOTHING "
        f"RETURNING {q(meta.pk.column)}, {q('idempotency_key')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, values)
        return {key: pk for pk, key in cursor.fetchall()}


def email_enqueue(
    *,
    to: str | list[str],
    subject: str,
    body: str,
    key: str,
    source: str = "",
    html: str = "",
) -> OutboxMessage | None:
    """Queue one e-mail (the built-in "email" channel) inside the current transaction.

    The one place e-mail is composed into an outbox row: `key` makes it once-only (None
    when it was already queued), empty addresses are dropped, and nothing is queued when
    none is left.
    """
    [message] = email_enqueue_many(
        [{"to": to, "subject": subject, "body": body, "key": key, "source": source, "html": html}]
    )
    return message


def email_enqueue_many(emails: list[dict]) -> list[OutboxMessage | None]:
    """`email_enqueue` for several e-mails (each dict its keyword arguments) in one
    INSERT; returns, in order, each new row or None (a key already queued, or nobody
    left to send it to)."""
    rows, positions = [], []
    for n, email in enumerate(emails):
        to = email["to"]
        addresses = [address for address in ([to] if isinstance(to, str) else to) if address]
        if not addresses:
            continue
        payload = {"subject": email["subject"], "body": email["body"], "to": addresses}
        if email.get("html"):
            payload["html"] = email["html"]
        rows.append(
            {
                "kind": "email",
                "idempotency_key": email["key"],
                "recipient": ", ".join(addresses),
                "payload": payload,
                "source": email.get("source", ""),
            }
        )
        positions.append(n)
    created: list[OutboxMessage | None] = [None] * len(emails)
    for n, message in zip(positions, outbox_enqueue_many(rows), strict=True):
        created[n] = message
    return created


class _DispatchAfterCommit:
    """The one on-commit callback of a transaction: queues all its rows in one message."""

    def __init__(self) -> None:
        self.message_ids: list[int] = []
        self.ran = False

    def __call__(self) -> None:
        self.ran = True
        outbox_dispatch(message_ids=self.message_ids)


def _dispatch_after_commit(message_id: int) -> None:
    """Add the row to its transaction's single dispatch, so a transaction that writes n
    rows talks to the broker once, not n times (a hung broker then costs one short
    timeout per transaction). A callback still registered survives every savepoint this
    row is in, so appending to it is safe; a row rolled back later is skipped by the
    worker (nothing to claim)."""
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        outbox_dispatch(message_ids=[message_id])
        return
    for _savepoints, callback, _robust in conn.run_on_commit:
        if isinstance(callback, _DispatchAfterCommit) and not callback.ran:
            callback.message_ids.append(message_id)
            return
    callback = _DispatchAfterCommit()
    callback.message_ids.append(message_id)
    transaction.on_commit(callback)


# Messages per Celery task when many rows are queued at once (the sweep, a fan-out), so
# several workers share them.
DISPATCH_CHUNK = 50

# Per thread (kombu connections are not thread-safe) and per process (not shared across
# a fork): what connection it holds, for which broker URL.
_publish = threading.local()


def publish_connection():
    """A broker connection for publishing only, with the short timeouts of
    BREAKGLASS_BROKER_PUBLISH_TIMEOUT_MS: a hung broker (accepting connections, never
    answering) costs a request that long, not the workers' 5 s socket timeout. For any
    publish whose loss a sweep or reaper repairs (pass it as `connection=`); call
    `publish_reset()` after a failure."""
    from breakglass.project.celery import app

    url = app.conf.broker_url
    key = (os.getpid(), url)
    if getattr(_publish, "connection", None) is None or _publish.key != key:
        publish_reset()
        timeout = settings.BREAKGLASS_BROKER_PUBLISH_TIMEOUT_MS / 1000
        options = {}
        if url.startswith(("redis://", "rediss://")):
            options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        _publish.connection = app.connection_for_write(
            connect_timeout=timeout, transport_options={**options, "max_retries": 0}
        )
        _publish.key = key
    return _publish.connection


def publish_reset() -> None:
    connection = getattr(_publish, "connection", None)
    _publish.connection = _publish.key = None
    if connection is not None:
        try:
            connection.release()
        except Exception:  # noqa: S110 - a broken connection may fail to close; it is dropped
            pass


def publish_once(task, *, args: list, countdown: float | None = None) -> None:
    """Send one task on the publish connection, or raise.

    A kept connection the broker has dropped since (a Redis restart) fails at once:
    that attempt is repeated on a fresh connection. A slow failure (a hung broker, the
    whole timeout spent) is not, so the bound stays one timeout per call."""
    from celery.exceptions import SoftTimeLimitExceeded

    timeout = settings.BREAKGLASS_BROKER_PUBLISH_TIMEOUT_MS / 1000
    while True:
        fresh = getattr(_publish, "connection", None) is None
        started = time.monotonic()
        try:
            task.apply_async(
                args=args, countdown=countdown, retry=False, connection=publish_connection()
            )
            return
        except SoftTimeLimitExceeded:
            raise
        except Exception:
            publish_reset()
            if fresh or time.monotonic() - started >= timeout / 2:
                raise


def outbox_dispatch(*, message_ids: list[int], countdown: float | None = None) -> None:
    """Hand messages to Celery, one task per DISPATCH_CHUNK rows; never raise (the
    sweep is the safety net).

    With the broker down or hung this returns after one attempt bounded by
    BREAKGLASS_BROKER_PUBLISH_TIMEOUT_MS, and stops at the first failure rather than
    paying that cost once per chunk.
    """
    from celery.exceptions import SoftTimeLimitExceeded

    from breakglass.outbox.tasks import outbox_deliver_batch  # here: tasks import this module

    for start in range(0, len(message_ids), DISPATCH_CHUNK):
        chunk = list(message_ids[start : start + DISPATCH_CHUNK])
        try:
            publish_once(outbox_deliver_batch, args=[chunk], countdown=countdown)
        except SoftTimeLimitExceeded:
            # The calling task ran out of time: let it stop now, not at the hard limit.
            raise
        except Exception as exc:  # broker down or hung: the rows stay pending for the sweep
            log.warning(
                "outbox: could not queue %s message(s) (%s); the sweep will",
                len(message_ids) - start,
                exc,
            )
            return


def outbox_claim_many(*, message_ids: list[int], due_only: bool = True) -> list[OutboxMessage]:
    """Claim every due, pending row among `message_ids` with one conditional UPDATE ...
    RETURNING, in id order. The UPDATE's WHERE re-checks the state under each row's lock,
    so of two workers claiming the same rows at once each row goes to exactly one of them;
    rows someone else holds, delivered or dead rows and rows not due are left out (not
    due: unless `due_only=False`, for the one who delivers a held row inline)."""
    ids = sorted({int(pk) for pk in message_ids})
    if not ids:
        return []
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    meta = OutboxMessage._meta
    q = connection.ops.quote_name
    columns = ", ".join(q(field.column) for field in meta.concrete_fields)
    in_ids = ", ".join(["%s"] * len(ids))
    due = f"AND {q('next_attempt_at')} <= %s " if due_only else ""
    sql = (
        f"UPDATE {q(meta.db_table)} SET {q('state')} = %s, {q('claimed_at')} = %s, "  # noqa: S608 - names from the model
        f"{q('attempts')} = {q('attempts')} + 1 WHERE {q('id')} IN ({in_ids}) "
        f"AND {q('state')} = %s {due}RETURNING {columns}"
    )
    params = [OutboxMessage.State.SENDING, now, *ids, OutboxMessage.State.PENDING]
    if due_only:
        params.append(now)
    # raw() maps the returned columns onto models and decodes them (JSON payload, times).
    claimed = list(OutboxMessage.objects.raw(sql, params))
    return sorted(claimed, key=lambda message: message.pk)


def outbox_claim(*, message_id: int) -> OutboxMessage | None:
    """Claim one due pending row; None if someone else has it."""
    claimed = outbox_claim_many(message_ids=[message_id])
    return claimed[0] if claimed else None


def outbox_deliver_many(*, message_ids: list[int], due_only: bool = True) -> dict[int, str]:
    """Claim the due, unclaimed rows among `message_ids` in one UPDATE and deliver them in
    order. Returns each id's resulting state ("skipped" when another worker has it, it is
    not due, or it is delivered or dead already).

    One heartbeat renews the lease of every row of the batch still being sent. A row the
    batch never reached (the task ran out of time) is handed back at once, its attempt
    not counted, rather than left for the sweep: no handler ever saw it. If the worker
    dies instead, the sweep releases the batch's undelivered rows after CLAIM_LEASE and
    each is delivered once more, with the same X-Breakglass-Message key.
    """
    results = dict.fromkeys((int(pk) for pk in message_ids), "skipped")
    claimed = outbox_claim_many(message_ids=list(results), due_only=due_only)
    if not claimed:
        return results
    held = {message.pk: message.attempts for message in claimed}

    def renew() -> bool:
        # Fenced by `attempts`: a row the sweep released and another worker claimed has
        # a higher count, so this worker's heartbeat renews nothing of it.
        if not held:
            return False
        fence = Q()
        for attempts in set(held.values()):
            fence |= Q(pk__in=[pk for pk, n in held.items() if n == attempts], attempts=attempts)
        return bool(
            OutboxMessage.objects.filter(fence, state=OutboxMessage.State.SENDING).update(
                claimed_at=timezone.now()
            )
        )

    waiting = list(claimed)
    try:
        # What this batch writes from here on (handlers' records, delivered and failure
        # marks) is progress: a database crash that lost some of it leaves rows "sending",
        # and the sweep delivers them again after the lease, as after a worker crash.
        with (
            progress_session(),
            lease_heartbeat(
                renew,
                every=CLAIM_RENEW_EVERY.total_seconds(),
                what=f"outbox batch of {len(claimed)}",
            ),
        ):
            while waiting:
                message = waiting.pop(0)
                results[message.pk] = _deliver_claimed(message)
                held.pop(message.pk, None)
    finally:
        if waiting:  # out of time, or the database failed under us
            _release_unattempted(waiting)
    return results


def _release_unattempted(messages: list[OutboxMessage]) -> None:
    try:
        for message in messages:
            OutboxMessage.objects.filter(
                pk=message.pk, state=OutboxMessage.State.SENDING, attempts=message.attempts
            ).update(state=OutboxMessage.State.PENDING, claimed_at=None, attempts=F("attempts") - 1)
    except Exception as exc:  # the lease runs out and the sweep releases them instead
        log.warning("outbox: could not hand back %s unsent row(s): %s", len(messages), exc)


def outbox_deliver_one(*, message_id: int) -> str:
    """Deliver one message if it is due and unclaimed. Returns the resulting state
    ("skipped" when another worker has it or it is not due)."""
    return outbox_deliver_many(message_ids=[message_id])[int(message_id)]


def _deliver_claimed(message: OutboxMessage) -> str:
    from celery.exceptions import SoftTimeLimitExceeded

    try:
        handler_for(message.kind)(message)
    except PermanentFailure as exc:
        _mark_failed(message, str(exc), permanent=True)
        return OutboxMessage.State.DEAD
    except Exception as exc:
        log.warning("outbox: %s failed (attempt %s): %s", message, message.attempts, exc)
        state = _mark_failed(message, f"{type(exc).__name__}: {exc}", permanent=False)
        if isinstance(exc, SoftTimeLimitExceeded):
            raise
        if state == OutboxMessage.State.PENDING:
            # Ask for the next attempt when it is due; if that message is lost, the
            # sweep finds the row anyway.
            outbox_dispatch(
                message_ids=[message.pk], countdown=backoff(message.attempts).total_seconds()
            )
        return state
    OutboxMessage.objects.filter(pk=message.pk, state=OutboxMessage.State.SENDING).update(
        state=OutboxMessage.State.DELIVERED, delivered_at=timezone.now(), last_error=""
    )
    return OutboxMessage.State.DELIVERED


def _mark_failed(message: OutboxMessage, error: str, *, permanent: bool) -> str:
    dead = permanent or message.attempts >= message.max_attempts
    state = OutboxMessage.State.DEAD if dead else OutboxMessage.State.PENDING
    OutboxMessage.objects.filter(pk=message.pk, state=OutboxMessage.State.SENDING).update(
        state=state,
        last_error=error[:2000],
        next_attempt_at=timezone.now() + backoff(message.attempts),
        claimed_at=None,
    )
    return state


def outbox_sweep(*, limit: int = 500) -> int:
    """Re-queue due rows whose task never ran, and release rows held by dead workers.

    A row still "sending" whose lease was not renewed belongs to a worker that died
    mid-delivery. Whether the receiver got it is unknown; it is retried with the same
    X-Breakglass-Message header (its idempotency key), so receivers can drop the
    duplicate, unless its attempts are used up.
    """
    now = timezone.now()
    stale = Q(state=OutboxMessage.State.SENDING, claimed_at__lt=now - CLAIM_LEASE)
    lost = "worker lost while sending (lease expired)"
    OutboxMessage.objects.filter(stale, attempts__gte=F("max_attempts")).update(
        state=OutboxMessage.State.DEAD, claimed_at=None, last_error=lost
    )
    OutboxMessage.objects.filter(stale).update(
        state=OutboxMessage.State.PENDING, claimed_at=None, next_attempt_at=now, last_error=lost
    )
    due = list(
        OutboxMessage.objects.filter(
            state=OutboxMessage.State.PENDING, next_attempt_at__lte=now
        ).values_list("pk", flat=True)[:limit]
    )
    outbox_dispatch(message_ids=due)
    return len(due)


def outbox_retry(*, message_ids: list[int], actor=None) -> int:
    """Put dead rows back in the queue (a console "resend failed" action). Delivered,
    pending and sending rows are never touched, so a resend cannot duplicate a delivery."""
    with transaction.atomic():
        dead = list(
            OutboxMessage.objects.select_for_update()
            .filter(pk__in=message_ids, state=OutboxMessage.State.DEAD)
            .values_list("pk", flat=True)
        )
        OutboxMessage.objects.filter(pk__in=dead).update(
            state=OutboxMessage.State.PENDING, next_attempt_at=timezone.now(), attempts=0
        )
        if dead:
            audit_record(action="outbox.retried", actor=actor, data={"messages": dead})
        transaction.on_commit(lambda: outbox_dispatch(message_ids=dead))
    return len(dead)
