import json

import pytest
from django.core.exceptions import ValidationError

from breakglass.audit.models import AuditEvent
from breakglass.outbox.models import OutboxMessage
from breakglass.outbox.services import outbox_deliver_one
from comms import webhooks
from comms.models import Webhook
from devkit.receivers import Receiver, signature_valid


@pytest.mark.parametrize(
    "url",
    ["ftp://example.test/x", "file:///etc/passwd", "javascript:alert(1)", "example.test/hook", ""],
)
def test_non_http_urls_are_refused(commander, url):
    with pytest.raises(ValidationError, match="http:// or https://"):
        webhooks.webhook_create(name="x", url=url, owner=commander)
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/api/v1/", "http://localhost:8000/x", "http://[::1]:8000/"]
)
def test_urls_pointing_at_the_platform_are_refused(commander, settings, url):
    settings.BREAKGLASS_BASE_URL = "http://127.0.0.1:8000"
    with pytest.raises(ValidationError, match="this platform itself"):
        webhooks.webhook_create(name="x", url=url, owner=commander)


def test_other_loopback_ports_are_allowed(commander, settings):
    settings.BREAKGLASS_BASE_URL = "http://127.0.0.1:8000"
    hook = webhooks.webhook_create(name="x", url="http://127.0.0.1:9999/h", owner=commander)
    assert hook.active and len(hook.secret) >= 30


def _delivery(published, hook):
    return OutboxMessage.objects.create(
        kind="comms_webhook",
        idempotency_key=f"comms.update:{published.pk}:hook:{hook.pk}",
        payload={"webhook_id": hook.pk, "update_id": published.pk},
        source=published.outbox_source,
        next_attempt_at=published.published_at,
    )


def test_json_delivery_is_signed_with_a_timestamped_hmac(published, commander):
    with Receiver("ok") as receiver:
        hook = webhooks.webhook_create(name="x", url=receiver.url, owner=commander)
        message = _delivery(published, hook)
        assert outbox_deliver_one(message_id=message.pk) == "delivered"
    [record] = receiver.accepted
    assert signature_valid(record, hook.secret)
    assert not signature_valid(record, "wrong-secret")
    body = json.loads(record["body"])
    assert body["event"] == "status_update.published"
    assert body["incident"]["reference"] == published.incident.reference
    assert body["update"]["body"] == published.body
    assert record["headers"]["X-Breakglass-Delivery"] == message.idempotency_key


def test_slack_delivery_has_a_text_field(published, commander):
    with Receiver("ok") as receiver:
        hook = webhooks.webhook_create(name="s", url=receiver.url, owner=commander, format="slack")
        outbox_deliver_one(message_id=_delivery(published, hook).pk)
    [body] = receiver.json_bodies()
    assert body["text"].startswith("*[SEV1] Logins failing* — Investigating\n")


def test_a_500_is_retried_with_the_reason_recorded(published, commander):
    with Receiver("error") as receiver:
        hook = webhooks.webhook_create(name="x", url=receiver.url, owner=commander)
        message = _delivery(published, hook)
        assert outbox_deliver_one(message_id=message.pk) == "pending"
    message.refresh_from_db()
    assert message.last_error == "RuntimeError: HTTP 500 from receiver"
    assert message.next_attempt_at > message.created_at
    hook.refresh_from_db()
    assert hook.consecutive_failures == 1


def test_a_receiver_that_times_out_is_retried(published, commander, settings):
    settings.COMMS_WEBHOOK_TIMEOUT_SECONDS = 0.3
    with Receiver("slow", delay=1.0) as receiver:
        hook = webhooks.webhook_create(name="x", url=receiver.url, owner=commander)
        message = _delivery(published, hook)
        assert outbox_deliver_one(message_id=message.pk) == "pending"
    message.refresh_from_db()
    assert "timed out" in message.last_error


def test_repeated_failure_disables_the_webhook_and_tells_the_owner_once(
    published, commander, settings
):
    settings.COMMS_WEBHOOK_DISABLE_AFTER = 3
    with Receiver("error") as receiver:
        hook = webhooks.webhook_create(name="x", url=receiver.url, owner=commander)
        message = _delivery(published, hook)
        for _ in range(3):
            OutboxMessage.objects.filter(pk=message.pk).update(
                next_attempt_at=published.published_at
            )
            outbox_deliver_one(message_id=message.pk)
        OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=published.published_at)
        assert outbox_deliver_one(message_id=message.pk) == "dead"
        assert len(receiver.requests) == 3  # the disabled hook is not called again
    hook.refresh_from_db()
    assert not hook.active
    assert "3 consecutive failures" in hook.disabled_reason
    owner_mail = OutboxMessage.objects.filter(idempotency_key__startswith="comms.webhook-disabled:")
    assert list(owner_mail.values_list("recipient", flat=True)) == [commander.email]
    assert AuditEvent.objects.filter(action="comms.webhook.disabled").count() == 1
    webhooks.webhook_enable(webhook=hook, actor=commander)
    hook.refresh_from_db()
    assert hook.active and hook.consecutive_failures == 0
