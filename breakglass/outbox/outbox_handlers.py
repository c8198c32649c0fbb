"""Built-in delivery channel: e-mail. Payload: subject, body, to (list), optional html,
headers (dict), reply_to (list)."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from breakglass.outbox.handlers import PermanentFailure, register


@register("email")
def deliver_email(message) -> None:
    payload = message.payload
    to = payload.get("to") or ([message.recipient] if message.recipient else [])
    if not to:
        raise PermanentFailure("e-mail has no recipient")
    email = EmailMultiAlternatives(
        subject=payload.get("subject", "(no subject)"),
        body=payload.get("body", ""),
        from_email=payload.get("from") or settings.DEFAULT_FROM_EMAIL,
        to=to,
        reply_to=payload.get("reply_to") or None,
        headers={"X-Breakglass-Message": message.idempotency_key, **(payload.get("headers") or {})},
    )
    if payload.get("html"):
        email.attach_alternative(payload["html"], "text/html")
    email.send(fail_silently=False)
