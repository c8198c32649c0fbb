"""Delivery of published status updates.

Publishing writes a single `comms_fanout` row, so a publish stays fast however many
people subscribe. The fan-out then writes one outbox row per recipient in batches. Each
row's idempotency key names the update and the recipient, and `bulk_create(...,
ignore_conflicts=True)` skips keys that exist: a fan-out that crashes half-way and runs
again, or runs twice, never creates a second delivery for anyone. Those rows are the
delivery records the console shows.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import time
import urllib.error
import urllib.request
from datetime import UTC

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from breakglass.accounts import roles
from breakglass.audit.services import audit_record
from breakglass.outbox.handlers import PermanentFailure, register
from breakglass.outbox.models import OutboxMessage
from breakglass.outbox.services import outbox_dispatch, outbox_enqueue
from comms.models import Audience, IncidentState, StatusUpdate, Subscriber, Webhook

log = logging.getLogger(__name__)
FANOUT_BATCH = 1000


def _subject(update: StatusUpdate) -> str:
    incident = update.incident
    drill = "[DRILL] " if incident.drill else ""
    state = IncidentState(update.incident_state).label
    return f"{drill}[{incident.get_severity_display()}] {incident.title} - {state}"


def _email_payload(update: StatusUpdate, subscriber: Subscriber | None, to: str) -> dict:
    body = update.body
    if update.next_update_at:
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


def _recipients(update: StatusUpdate):
    """Yield (key suffix, kind, recipient, payload) for everyone who gets this update."""
    incident = update.incident
    if update.audience == Audience.INTERNAL:
        users = (
            get_user_model()
            .objects.filter(
                is_active=True,
                groups__name__in=[roles.RESPONDER, roles.INCIDENT_COMMANDER, roles.COMMS_LEAD],
            )
            .exclude(email="")
            .distinct()
            .order_by("pk")
        )
        for user in users.iterator():
            payload = _email_payload(update, None, user.email)
            yield f"user:{user.pk}", "comms_email", user.email, payload
        return
    # Drill incidents reach drill subscribers only; real ones never reach them.
    service_ids = list(incident.affected.values_list("service_id", flat=True))
    subscribers = (
        Subscriber.objects.filter(
            drill=incident.drill, confirmed_at__isnull=False, unsubscribed_at__isnull=True
        )
        .filter(Q(services__isnull=True) | Q(services__in=service_ids))
        .distinct()
        .order_by("pk")
    )
    for sub in subscribers.iterator(chunk_size=FANOUT_BATCH):
        yield f"sub:{sub.pk}", "comms_email", sub.email, _email_payload(update, sub, sub.email)
    for hook in Webhook.objects.filter(drill=incident.drill, active=True).order_by("pk"):
        yield (
            f"hook:{hook.pk}",
            "comms_webhook",
            f"{hook.name} <{hook.url}>",
            {
                "webhook_id": hook.pk,
                "update_id": update.pk,
            },
        )


@register("comms_fanout")
def deliver_fanout(message) -> None:
    update = StatusUpdate.objects.select_related("incident").get(pk=message.payload["update_id"])
    batch: list[OutboxMessage] = []
    for suffix, kind, recipient, payload in _recipients(update):
        batch.append(
            OutboxMessage(
                kind=kind,
                idempotency_key=f"comms.update:{update.pk}:{suffix}",
                recipient=recipient[:500],
                payload=payload,
                source=update.outbox_source,
                next_attempt_at=timezone.now(),
            )
        )
        if len(batch) >= FANOUT_BATCH:
            _write_batch(batch)
            batch = []
    if batch:
        _write_batch(batch)


def _write_batch(batch: list[OutboxMessage]) -> None:
    keys = [m.idempotency_key for m in batch]
    with transaction.atomic():
        OutboxMessage.objects.bulk_create(batch, ignore_conflicts=True)
    # Re-dispatching a row that is already queued is harmless: delivery claims it with a
    # conditional UPDATE, so only one worker ever sends it.
    ids = list(
        OutboxMessage.objects.filter(
            idempotency_key__in=keys, state=OutboxMessage.State.PENDING
        ).values_list("pk", flat=True)
    )
    outbox_dispatch(message_ids=ids)


# --- E-mail --------------------------------------------------------------------------------

_connection = None
_connection_for = None


def _smtp():
    """One SMTP connection per worker process, kept open between deliveries: opening a
    connection per message (EHLO, maybe STARTTLS and AUTH) costs more than the message."""
    global _connection, _connection_for
    wanted = (
        settings.EMAIL_BACKEND,
        getattr(settings, "EMAIL_HOST", ""),
        getattr(settings, "EMAIL_PORT", 0),
    )
    if _connection is not None and _connection_for != wanted:
        _smtp_reset()
    if _connection is None:
        _connection = get_connection(fail_silently=False)
        _connection.open()
        _connection_for = wanted
    return _connection


def _smtp_reset() -> None:
    global _connection
    if _connection is not None:
        try:
            _connection.close()
        except Exception:  # noqa: S110 - already broken; we are replacing it
            pass
    _connection = None


@register("comms_email")
def deliver_update_email(message) -> None:
    """Like the built-in "email" kind, over a reused connection. A dropped connection is
    retried once on a fresh one; anything else goes back to the outbox's retry logic."""
    payload = message.payload
    email = EmailMultiAlternatives(
        subject=payload["subject"],
        body=payload["body"],
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=payload["to"],
        headers={"X-Breakglass-Message": message.idempotency_key, **payload.get("headers", {})},
    )
    for attempt in (1, 2):
        try:
            email.connection = _smtp()
            email.send(fail_silently=False)
            return
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            _smtp_reset()
            if attempt == 2:
                raise
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentFailure(f"recipient refused: {exc.recipients}") from None
        except Exception:
            _smtp_reset()
            raise


# --- Webhooks ------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect could lead a webhook to an address we refused at creation.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


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
            f"{update.body}" + (f"\n_Next update by {next_at}_" if next_at else "")
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
    if not hook.url.startswith(("http://", "https://")):  # checked at creation; never file:
        raise PermanentFailure("webhook URL is not http(s)")
    request = urllib.request.Request(  # noqa: S310 - scheme checked just above
        hook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Breakglass-Webhook/1",
            "X-Breakglass-Signature": webhook_sign(
                secret=hook.secret, timestamp=timestamp, body=body
            ),
            "X-Breakglass-Delivery": message.idempotency_key,  # receivers can dedupe on it
        },
    )
    timeout = getattr(settings, "COMMS_WEBHOOK_TIMEOUT_SECONDS", 5)
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(1024)
    except urllib.error.HTTPError as exc:
        error = f"HTTP {exc.code} from receiver"
        _webhook_failed(hook, error)
        if 400 <= exc.code < 500 and exc.code not in (408, 429):
            raise PermanentFailure(error) from None
        raise RuntimeError(error) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        error = f"receiver unreachable: {reason}"
        _webhook_failed(hook, error)
        raise RuntimeError(error) from None
    Webhook.objects.filter(pk=hook.pk, consecutive_failures__gt=0).update(consecutive_failures=0)


def _webhook_failed(hook: Webhook, error: str) -> None:
    """Count consecutive failures; after too many, disable the webhook once and tell its
    owner (the conditional UPDATE makes sure only one worker does the telling)."""
    limit = getattr(settings, "COMMS_WEBHOOK_DISABLE_AFTER", 10)
    with transaction.atomic():
        Webhook.objects.filter(pk=hook.pk).update(
            consecutive_failures=F("consecutive_failures") + 1
        )
        disabled = Webhook.objects.filter(
            pk=hook.pk, active=True, consecutive_failures__gte=limit
        ).update(active=False, disabled_reason=f"{limit} consecutive failures; last: {error}")
        if disabled:
            audit_record(
                action="comms.webhook.disabled",
                obj=hook,
                data={"failures": limit, "last_error": error},
            )
            outbox_enqueue(
                kind="email",
                idempotency_key=f"comms.webhook-disabled:{hook.pk}:{int(time.time())}",
                recipient=hook.owner.email,
                payload={
                    "subject": f"Webhook {hook.name} was disabled",
                    "body": f"Your webhook {hook.name} ({hook.url}) failed {limit} times in a "
                    f"row and has been disabled.\nLast error: {error}\n\nRe-enable it in "
                    f"{settings.BREAKGLASS_BASE_URL}/comms/webhooks/ once the receiver is fixed.",
                    "to": [hook.owner.email],
                },
                source=f"comms.webhook:{hook.pk}",
            )


@register("comms_status_export")
def deliver_status_export(message) -> None:
    from comms.export import status_site_export

    status_site_export(out_dir=settings.STATUS_SITE_DIR)
