"""Outgoing webhooks: URL validation, creation, re-enabling, and the failure streak that
disables a webhook whose receiver keeps failing."""

from __future__ import annotations

import ipaddress
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from breakglass.audit.services import audit_record
from breakglass.outbox.services import email_enqueue
from comms.egress import EgressRefused, destination_vet
from comms.errors import CommsError
from comms.models import (
    Webhook,
)
from comms.selectors import user_can_manage_webhooks

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def webhook_url_validate(url: str) -> str:
    """Refuse anything but http(s) to a public address (comms.egress: the same check runs
    again at every delivery, against what the name resolves to then), and refuse the
    platform itself even when an operator allow-lists internal receivers."""
    url = (url or "").strip()
    try:
        destination = destination_vet(url)
    except EgressRefused as exc:
        message = str(exc)
        raise CommsError(f"Webhook URL refused: {message[0].upper()}{message[1:]}.") from None
    base = urlsplit(settings.BREAKGLASS_BASE_URL)
    base_port = base.port or (443 if base.scheme == "https" else 80)
    base_host = (base.hostname or "").lower().rstrip(".")
    same_host = destination.host == base_host or (
        _is_loopback(destination.address) and _is_loopback(base_host)
    )
    if same_host and destination.port == base_port:
        raise CommsError("A webhook cannot point at this platform itself.")
    return url


def _require_manager(user) -> None:
    if not user_can_manage_webhooks(user):
        raise PermissionDenied("Only communications leads and administrators manage webhooks.")


def webhook_create(
    *, name: str, url: str, owner, format: str = Webhook.Format.JSON, drill: bool = False
) -> Webhook:
    _require_manager(owner)
    url = webhook_url_validate(url)
    name = (name or "").strip()
    if not name:
        raise CommsError("A webhook needs a name.")
    if format not in Webhook.Format.values:
        raise CommsError(f"Unknown webhook format {format!r}.")
    with transaction.atomic():
        webhook = Webhook.objects.create(
            name=name, url=url, format=format, owner=owner, drill=drill, created_at=timezone.now()
        )
        audit_record(
            action="comms.webhook.created",
            actor=owner,
            obj=webhook,
            data={"url": url, "format": format, "drill": drill},
        )
    return webhook


def webhook_enable(*, webhook: Webhook, actor) -> Webhook:
    _require_manager(actor)
    with transaction.atomic():
        Webhook.objects.filter(pk=webhook.pk).update(
            active=True, consecutive_failures=0, disabled_reason=""
        )
        audit_record(action="comms.webhook.enabled", actor=actor, obj=webhook, data={})
    webhook.refresh_from_db()
    return webhook


def webhook_success_record(*, webhook: Webhook) -> None:
    """A delivery got through: the failure streak starts again from zero."""
    Webhook.objects.filter(pk=webhook.pk, consecutive_failures__gt=0).update(consecutive_failures=0)


def webhook_failure_record(*, webhook: Webhook, error: str) -> bool:
    """Count one more consecutive failure; after COMMS_WEBHOOK_DISABLE_AFTER of them,
    disable the webhook once and tell its owner. The conditional UPDATE makes sure only
    one worker disables and tells, however many fail at once. Returns True if this call
    disabled it."""
    limit = settings.COMMS_WEBHOOK_DISABLE_AFTER
    with transaction.atomic():
        Webhook.objects.filter(pk=webhook.pk).update(
            consecutive_failures=F("consecutive_failures") + 1
        )
        disabled = Webhook.objects.filter(
            pk=webhook.pk, active=True, consecutive_failures__gte=limit
        ).update(active=False, disabled_reason=f"{limit} consecutive failures; last: {error}")
        if disabled:
            audit_record(
                action="comms.webhook.disabled",
                obj=webhook,
                data={"failures": limit, "last_error": error},
            )
            email_enqueue(
                to=webhook.owner.email,
                key=f"comms.webhook-disabled:{webhook.pk}:{int(time.time())}",
                subject=f"Webhook {webhook.name} was disabled",
                body=f"Your webhook {webhook.name} ({webhook.url}) failed {limit} times "
                f"in a row and has been disabled.\nLast error: {error}\n\nRe-enable it in "
                f"{settings.BREAKGLASS_BASE_URL}/comms/webhooks/ once the receiver is fixed.",
                source=f"comms.webhook:{webhook.pk}",
            )
    return bool(disabled)
