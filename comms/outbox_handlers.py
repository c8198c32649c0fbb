"""Delivery of published status updates.

Publishing writes a single `comms_fanout` row, so a publish stays fast however many
people subscribe. The fan-out freezes the audience and splits it into `comms_fanout_batch`
rows of 500; each batch writes one outbox row per recipient. Every row's idempotency key
names the update and the recipient, and `bulk_create(..., ignore_conflicts=True)` skips
keys that exist: a fan-out or batch that crashes half-way and runs again, or runs twice,
never creates a second delivery for anyone. Those rows are the delivery records the
console shows.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import time
from datetime import UTC

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.utils import timezone

from breakglass.outbox.handlers import PermanentFailure, register
from breakglass.outbox.models import OutboxMessage
from breakglass.outbox.outbox_handlers import smtp_send
from breakglass.outbox.services import outbox_dispatch, outbox_enqueue
from comms.egress import EgressRefused, egress_post, url_redacted
from comms.export import status_site_export
from comms.models import IncidentState, StatusUpdate, Subscriber, Webhook
from comms.selectors import status_update_audience
from comms.webhooks import webhook_failure_record, webhook_success_record

log = logging.getLogger(__name__)
FANOUT_BATCH = 500


def _subject(update: StatusUpdate) -> str:
    incident = update.incident
    drill = "[DRILL] " if incident.drill else ""
    state = IncidentState(update.incident_state).label
    return f"{drill}[{incident.get_severity_display()}] {incident.title} - {state}"


def _email_payload(update: StatusUpdate, subscriber: Subscriber | None, to: str) -> dict:
    body = update.body
    if update.next_update_unstated:
        body += f"\n\nNext update by {update.next_update_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC."
    headers = {}
    if subscriber is not None:
        unsubscribe = f"{settings.BREAKGLASS_BASE_URL}/status/unsubscribe/{subscriber.token}/"
        body += (
            f"\n\nStatus page: {settings.BREAKGLASS_BASE_URL}/status/\nUnsubscribe: {unsubscribe}"
        )
        # RFC 2369 + RFC 8058: mail clients show an unsubscribe button that POSTs here.
        headers = {
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    return {"subject": _subject(update), "body": body, "to": [to], "headers": headers}


@register("comms_fanout")
def deliver_fanout(message) -> None:
    """Split the audience into batches, each its own outbox row and task, so no single
    task has to write and queue 10,000 deliveries inside its time limit, and batches run
    in parallel on several workers. Keys make a re-run of this step a no-op."""
    update = StatusUpdate.objects.select_related("incident").get(pk=message.payload["update_id"])
    with transaction.atomic():
        for group, ids in status_update_audience(update=update).items():
            for start in range(0, len(ids), FANOUT_BATCH):
                chunk = ids[start : start + FANOUT_BATCH]
                outbox_enqueue(
                    kind="comms_fanout_batch",
                    idempotency_key=f"comms.fanout:{update.pk}:{group}:{chunk[0]}",
                    payload={"update_id": update.pk, "group": group, "ids": chunk},
                    source=update.outbox_source,
                )


def _batch_rows(update: StatusUpdate, group: str, ids: list[int]):
    """Yield (key suffix, kind, recipient, payload) for one batch."""
    if group == "user":
        for user in get_user_model().objects.filter(pk__in=ids).order_by("pk"):
            payload = _email_payload(update, None, user.email)
            yield f"user:{user.pk}", "comms_email", user.email, payload
    elif group == "sub":
        # .active(): skips anyone who left between the fan-out and this batch.
        for sub in Subscriber.objects.active().filter(pk__in=ids).order_by("pk"):
            yield f"sub:{sub.pk}", "comms_email", sub.email, _email_payload(update, sub, sub.email)
    elif group == "hook":
        for hook in Webhook.objects.filter(pk__in=ids).order_by("pk"):
            yield (
                f"hook:{hook.pk}",
                "comms_webhook",
                f"{hook.name} <{url_redacted(hook.url)}>",  # the path may be a secret
                {"webhook_id": hook.pk, "update_id": update.pk},
            )


@register("comms_fanout_batch")
def deliver_fanout_batch(message) -> None:
    update = StatusUpdate.objects.select_related("incident").get(pk=message.payload["update_id"])
    now = timezone.now()
    rows = [
        OutboxMessage(
            kind=kind,
            idempotency_key=f"comms.update:{update.pk}:{suffix}",
            recipient=recipient[:500],
            payload=payload,
            source=update.outbox_source,
            next_attempt_at=now,
        )
        for suffix, kind, recipient, payload in _batch_rows(
            update, message.payload["group"], message.payload["ids"]
        )
    ]
    keys = [row.idempotency_key for row in rows]
    existing = set(
        OutboxMessage.objects.filter(idempotency_key__in=keys).values_list(
            "idempotency_key", flat=True
        )
    )
    with transaction.atomic():
        OutboxMessage.objects.bulk_create(
            [row for row in rows if row.idempotency_key not in existing], ignore_conflicts=True
        )
    # Queue only what this run created; rows from an earlier, interrupted run are already
    # queued or will be found by the sweep. Delivery claims each row with a conditional
    # UPDATE, so a row queued twice is still sent once.
    new_ids = list(
        OutboxMessage.objects.filter(
            idempotency_key__in=[k for k in keys if k not in existing],
            state=OutboxMessage.State.PENDING,
        ).values_list("pk", flat=True)
    )
    outbox_dispatch(message_ids=new_ids)


# --- E-mail --------------------------------------------------------------------------------


@register("comms_email")
def deliver_update_email(message) -> None:
    """Like the built-in "email" kind, over the same kept connection (`smtp_send`)."""
    payload = message.payload
    email = EmailMultiAlternatives(
        subject=payload["subject"],
        body=payload["body"],
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=payload["to"],
        headers={"X-Breakglass-Message": message.idempotency_key, **payload.get("headers", {})},
    )
    smtp_send(email)


# --- Webhooks ------------------------------------------------------------------------------


def webhook_sign(*, secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`; the timestamp lets receivers
    refuse replays of old deliveries."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def webhook_body(hook: Webhook, update: StatusUpdate) -> dict:
    incident = update.incident
    state = IncidentState(update.incident_state).label
    next_at = (
        update.next_update_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        if update.next_update_at
        else None
    )
    if hook.format == Webhook.Format.SLACK:
        drill = "[DRILL] " if incident.drill else ""
        text = (
            f"{drill}*[{incident.get_severity_display()}] {incident.title}* — {state}\n"
            f"{update.body}"
            + (f"\n_Next update by {next_at}_" if update.next_update_unstated else "")
        )
        return {"text": text, "mrkdwn": True}
    return {
        "event": "status_update.published",
        "drill": incident.drill,
        "incident": {
            "reference": incident.reference,
            "title": incident.title,
            "severity": incident.get_severity_display(),
            "state": update.incident_state,
            "affected": [
                {"service": a.service.slug, "name": a.service.name, "impact": a.impact}
                for a in incident.affected.select_related("service")
            ],
            "status_page": f"{settings.BREAKGLASS_BASE_URL}/status/",
        },
        "update": {
            "id": update.pk,
            "body": update.body,
            "published_at": update.published_at.isoformat() if update.published_at else None,
            "next_update_at": update.next_update_at.isoformat() if update.next_update_at else None,
        },
    }


@register("comms_webhook")
def deliver_webhook(message) -> None:
    hook = Webhook.objects.filter(pk=message.payload["webhook_id"]).first()
    if hook is None:
        raise PermanentFailure("webhook was deleted")
    if not hook.active:
        raise PermanentFailure(f"webhook disabled: {hook.disabled_reason or 'by an operator'}")
    update = StatusUpdate.objects.select_related("incident").get(pk=message.payload["update_id"])
    body = json.dumps(webhook_body(hook, update), separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Breakglass-Webhook/1",
        "X-Breakglass-Signature": webhook_sign(secret=hook.secret, timestamp=timestamp, body=body),
        "X-Breakglass-Delivery": message.idempotency_key,  # receivers can dedupe on it
        # The same key under the name every outbox delivery (e-mail too) carries.
        "X-Breakglass-Message": message.idempotency_key,
    }
    timeout = settings.COMMS_WEBHOOK_TIMEOUT_SECONDS
    try:
        # Resolved and vetted now, not only at creation: DNS may have changed since.
        status = egress_post(url=hook.url, body=body, headers=headers, timeout=timeout)
    except EgressRefused as exc:
        error = f"refused: {exc}"
        webhook_failure_record(webhook=hook, error=error)
        raise PermanentFailure(error) from None
    except (OSError, http.client.HTTPException) as exc:
        error = f"receiver unreachable: {exc or type(exc).__name__}"
        webhook_failure_record(webhook=hook, error=error)
        raise RuntimeError(error) from None
    if 300 <= status < 400:
        # A redirect could lead the request to an address refused above: never followed.
        error = f"HTTP {status} from receiver (redirects are not followed)"
        webhook_failure_record(webhook=hook, error=error)
        raise PermanentFailure(error)
    if status >= 400:
        error = f"HTTP {status} from receiver"
        webhook_failure_record(webhook=hook, error=error)
        if status < 500 and status not in (408, 429):
            raise PermanentFailure(error)
        raise RuntimeError(error)
    webhook_success_record(webhook=hook)


@register("comms_status_export")
def deliver_status_export(message) -> None:
    status_site_export(out_dir=settings.STATUS_SITE_DIR)
