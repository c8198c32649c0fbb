"""Built-in delivery channel: e-mail. Payload: subject, body, to (list), optional html,
headers (dict), reply_to (list).

Messages go out over one SMTP connection kept open per worker thread (`smtp_send`), so a
batch of rows, and the batches after it, pay for connecting (EHLO, STARTTLS, AUTH) once
instead of once per message.
"""

import smtplib
import threading

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection

from breakglass.outbox.handlers import PermanentFailure, register

_smtp = threading.local()


def _smtp_connection():
    wanted = (settings.EMAIL_BACKEND, settings.EMAIL_HOST, settings.EMAIL_PORT)
    if getattr(_smtp, "connection", None) is not None and _smtp.key != wanted:
        smtp_reset()
    if getattr(_smtp, "connection", None) is None:
        connection = get_connection(fail_silently=False)
        connection.open()
        _smtp.connection, _smtp.key = connection, wanted
    return _smtp.connection


def smtp_reset() -> None:
    """Drop the kept connection (the next send opens a fresh one)."""
    connection = getattr(_smtp, "connection", None)
    _smtp.connection = _smtp.key = None
    if connection is not None:
        try:
            connection.close()
        except Exception:  # noqa: S110 - already broken; we are replacing it
            pass


def smtp_send(email: EmailMessage) -> None:
    """Send over the kept connection. A connection the server dropped while it sat idle
    is replaced and the message sent once more; a refused recipient is a permanent
    failure; anything else goes back to the outbox's retry logic."""
    for attempt in (1, 2):
        try:
            email.connection = _smtp_connection()
            email.send(fail_silently=False)
            return
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            smtp_reset()
            if attempt == 2:
                raise
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentFailure(f"recipient refused: {exc.recipients}") from None
        except Exception:
            smtp_reset()
            raise


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
    smtp_send(email)
