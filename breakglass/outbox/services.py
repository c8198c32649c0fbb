"""The transactional outbox: enqueue side effects inside the action's transaction,
deliver them afterwards from Celery, and sweep up anything a lost task left behind."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from breakglass.audit.services import audit_record
from breakglass.outbox.handlers import PermanentFailure, handler_for
from breakglass.outbox.models import OutboxMessage

log = logging.getLogger(__name__)

# A row claimed for longer than this is assumed to belong to a dead worker.
CLAIM_LEASE = timedelta(minutes=5)


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
) -> OutboxMessage | None:
    """Add a side effect to the current transaction. Returns None if the key already exists.

    The Celery task is sent only after commit, and a broker outage there is logged, not
    raised: the action has already committed and the sweep will deliver the row.
    """
    try:
        with transaction.atomic():
            message = OutboxMessage.objects.create(
                kind=kind,
                idempotency_key=idempotency_key,
                payload=payload,
                recipient=recipient,
                source=source,
                max_attempts=max_attempts,
                next_attempt_at=timezone.now(),
            )
    except IntegrityError:
        return None
    transaction.on_commit(lambda: outbox_dispatch(message_ids=[message.pk]))
    return message


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
    addresses = [address for address in ([to] if isinstance(to, str) else to) if address]
    if not addresses:
        return None
    payload = {"subject": subject, "body": body, "to": addresses}
    if html:
        payload["html"] = html
    return outbox_enqueue(
        kind="email",
        idempotency_key=key,
        recipient=", ".join(addresses),
        payload=payload,
        source=source,
    )


def outbox_dispatch(*, message_ids: list[int], countdown: float | None = None) -> None:
    """Hand messages to Celery; never raise (the sweep is the safety net).

    With the broker down this returns within a fraction of a second (settings make
    kombu fail fast instead of retrying), and stops at the first failure rather than
    paying that cost once per message.
    """
    from celery.exceptions import SoftTimeLimitExceeded

    from breakglass.outbox.tasks import outbox_deliver  # here: the tasks import this module

    for message_id in message_ids:
        try:
            outbox_deliver.apply_async(args=[message_id], countdown=countdown, retry=False)
        except SoftTimeLimitExceeded:
            # The calling task ran out of time: let it stop now, not at the hard limit.
            raise
        except Exception as exc:  # broker down: the row stays pending for the sweep
            log.warning("outbox: could not queue message %s (%s); the sweep will", message_id, exc)
            return


def outbox_claim(*, message_id: int) -> OutboxMessage | None:
    """Claim a due pending row with a conditional UPDATE; None if someone else has it."""
    now = timezone.now()
    claimed = OutboxMessage.objects.filter(
        pk=message_id, state=OutboxMessage.State.PENDING, next_attempt_at__lte=now
    ).update(state=OutboxMessage.State.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return None
    return OutboxMessage.objects.get(pk=message_id)


def outbox_deliver_one(*, message_id: int) -> str:
    """Deliver one message if it is due and unclaimed. Returns the resulting state
    ("skipped" when another worker has it or it is not due)."""
    message = outbox_claim(message_id=message_id)
    if message is None:
        return "skipped"
    try:
        handler_for(message.kind)(message)
    except PermanentFailure as exc:
        _mark_failed(message, str(exc), permanent=True)
        return OutboxMessage.State.DEAD
    except Exception as exc:
        log.warning("outbox: %s failed (attempt %s): %s", message, message.attempts, exc)
        state = _mark_failed(message, f"{type(exc).__name__}: {exc}", permanent=False)
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

    A row still "sending" after the lease belongs to a worker that died mid-delivery.
    Whether the receiver got it is unknown; it is retried (receivers can deduplicate on
    the X-Breakglass-Message header) unless its attempts are used up.
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
