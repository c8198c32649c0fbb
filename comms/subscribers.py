"""Subscribers: double opt-in, confirmation and unsubscribe."""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from breakglass.outbox.services import email_enqueue
from comms.errors import CommsError
from comms.models import (
    Subscriber,
)

log = logging.getLogger(__name__)


def _clean_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise CommsError(f"{email!r} is not a valid e-mail address.") from None
    return email


def _services_label(services) -> str:
    names = sorted(service.name for service in services)
    return ", ".join(names) if names else "every service"


def subscriber_subscribe(*, email: str, services=(), drill: bool = False) -> Subscriber:
    """Double opt-in: nothing is sent to the address until its owner clicks the link.

    Anyone can type any address, so nothing about a confirmed subscription changes on an
    anonymous request: the new service filter waits in `pending_services` and takes effect
    only when the link mailed to that address is followed (`subscriber_confirm`).

    Not an audit event: anonymous requests must not each take the hash chain's lock (a
    flood would serialise every audited action behind it). Logged instead; the rows carry
    created_at, confirmed_at and change_requested_at.
    """
    email = _clean_email(email)
    services = list(services)
    now = timezone.now()
    with transaction.atomic():
        subscriber, created = Subscriber.objects.select_for_update().get_or_create(
            email=email, drill=drill, defaults={"created_at": now}
        )
        if not created and subscriber.unsubscribed_at is not None:
            # Coming back: confirm again, with a fresh token.
            subscriber.unsubscribed_at = None
            subscriber.confirmed_at = None
            subscriber.token = Subscriber._meta.get_field("token").default()
            subscriber.save()
        if subscriber.confirmed_at is not None:
            _change_request(subscriber=subscriber, services=services, now=now)
            log.info("comms: subscription change requested for subscriber %s", subscriber.pk)
            return subscriber
        subscriber.services.set(services)
        link = f"{settings.BREAKGLASS_BASE_URL}/status/subscribe/confirm/{subscriber.token}/"
        # Keyed by token: subscribing twice does not mail the address twice.
        email_enqueue(
            to=email,
            key=f"comms.confirm:{subscriber.token}",
            subject="Confirm your status update subscription",
            body="Someone (hopefully you) asked to receive incident updates at "
            f"this address.\nConfirm: {link}\n\nIf it was not you, ignore this "
            "message and nothing more will be sent.",
            source=f"comms.subscriber:{subscriber.pk}",
        )
    log.info("comms: subscription requested for subscriber %s (drill=%s)", subscriber.pk, drill)
    return subscriber


def _change_request(*, subscriber: Subscriber, services: list, now) -> None:
    wanted = sorted(service.pk for service in services)
    current = sorted(subscriber.services.values_list("pk", flat=True))
    if wanted == current:
        return  # nothing would change: no mail
    if subscriber.pending_services == wanted and subscriber.change_token:
        return  # the same change is waiting for its link already: no second mail
    subscriber.pending_services = wanted
    subscriber.change_token = Subscriber._meta.get_field("token").default()
    subscriber.change_requested_at = now
    subscriber.save(update_fields=["pending_services", "change_token", "change_requested_at"])
    link = f"{settings.BREAKGLASS_BASE_URL}/status/subscribe/confirm/{subscriber.change_token}/"
    email_enqueue(
        to=subscriber.email,
        key=f"comms.change:{subscriber.change_token}",
        subject="Confirm the change to your status update subscription",
        body="Someone (hopefully you) asked to change which incident updates this "
        f"address receives, to: {_services_label(services)}.\nConfirm the change: {link}\n\n"
        "If it was not you, ignore this message: your subscription stays as it is.",
        source=f"comms.subscriber:{subscriber.pk}",
    )


def subscriber_confirm(*, token: str) -> Subscriber:
    """Follow a mailed link: confirm a new subscription, or apply a waiting change."""
    if not token:
        raise CommsError("This confirmation link is not valid (any more).")
    with transaction.atomic():
        subscriber = (
            Subscriber.objects.select_for_update()
            .filter(Q(token=token) | Q(change_token=token))
            .first()
        )
        if subscriber is None or subscriber.unsubscribed_at is not None:
            raise CommsError("This confirmation link is not valid (any more).")
        if subscriber.change_token and hmac.compare_digest(subscriber.change_token, token):
            subscriber.services.set(subscriber.pending_services or [])
            subscriber.pending_services = None
            subscriber.change_token = ""
            subscriber.change_requested_at = None
            subscriber.save(
                update_fields=["pending_services", "change_token", "change_requested_at"]
            )
            log.info("comms: subscription change confirmed for subscriber %s", subscriber.pk)
        elif subscriber.confirmed_at is None:
            subscriber.confirmed_at = timezone.now()
            subscriber.save(update_fields=["confirmed_at"])
            log.info("comms: subscription confirmed for subscriber %s", subscriber.pk)
    return subscriber


def subscriber_unsubscribe(*, token: str) -> Subscriber:
    """One click, idempotent: a second click changes nothing and is not an error."""
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(token=token).first()
        if subscriber is None:
            raise CommsError("This unsubscribe link is not valid.")
        if subscriber.unsubscribed_at is None:
            subscriber.unsubscribed_at = timezone.now()
            subscriber.save(update_fields=["unsubscribed_at"])
            log.info("comms: subscriber %s unsubscribed", subscriber.pk)
    return subscriber


# --- Webhooks ------------------------------------------------------------------------------
