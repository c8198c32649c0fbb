"""Subscribers: double opt-in, confirmation and unsubscribe."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from breakglass.audit.services import audit_record
from breakglass.outbox.services import email_enqueue
from comms.errors import CommsError
from comms.models import (
    Subscriber,
)


def _clean_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise CommsError(f"{email!r} is not a valid e-mail address.") from None
    return email


def subscriber_subscribe(*, email: str, services=(), drill: bool = False) -> Subscriber:
    """Double opt-in: nothing is sent to the address until its owner clicks the link."""
    email = _clean_email(email)
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
        subscriber.services.set(services)
        if subscriber.confirmed_at is None:
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
        audit_record(
            action="comms.subscriber.subscribed",
            obj=subscriber,
            data={"drill": drill, "services": [s.slug for s in services]},
        )
    return subscriber


def subscriber_confirm(*, token: str) -> Subscriber:
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(token=token).first()
        if subscriber is None or subscriber.unsubscribed_at is not None:
            raise CommsError("This confirmation link is not valid (any more).")
        if subscriber.confirmed_at is None:
            subscriber.confirmed_at = timezone.now()
            subscriber.save(update_fields=["confirmed_at"])
            audit_record(action="comms.subscriber.confirmed", obj=subscriber, data={})
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
            audit_record(action="comms.subscriber.unsubscribed", obj=subscriber, data={})
    return subscriber


# --- Webhooks ------------------------------------------------------------------------------
