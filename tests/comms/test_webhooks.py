import json

import pytest
from django.core.exceptions import ValidationError
from django.utils.timezone import now as NOW  # noqa: N812

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
def test_non_http_urls_are_refused(comms_lead, url):
    with pytest.raises(ValidationError, match="http:// or https://"):
        webhooks.webhook_create(name="x", url=url, owner=comms_lead)
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/api/v1/", "http://localhost:8000/x", "http://[::1]:8000/"]
)
def test_urls_pointing_at_the_platform_are_refused(comms_lead, settings, url):
    settings.BREAKGLASS_BASE_URL = "http://127.0.0.1:8000"
    settings.COMMS_WEBHOOK_ALLOW = ["127.0.0.0/8", "::1/128"]  # even when loopback is allowed
    with pytest.raises(ValidationError, match="this platform itself"):
        webhooks.webhook_create(name="x", url=url, owner=comms_lead)


def test_other_loopback_ports_are_allowed(comms_lead, settings):
    settings.BREAKGLASS_BASE_URL = "http://127.0.0.1:8000"
    hook = webhooks.webhook_create(name="x", url="http://127.0.0.1:9999/h", owner=comms_lead)
    assert hook.active and len(hook.secret) >= 30


def _delivery(published, hook):
    return OutboxMessage.objects.create(
        kind="comms_webhook",
        idempotency_key=f"comms.update:{published.pk}:hook:{hook.pk}",
        payload={"webhook_id": hook.pk, "update_id": published.pk},
        source=published.outbox_source,
        next_attempt_at=published.published_at,
    )


def test_json_delivery_is_signed_with_a_timestamped_hmac(published, comms_lead):
    with Receiver("ok") as receiver:
        hook = webhooks.webhook_create(name="x", url=receiver.url, owner=comms_lead)
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


def test_slack_delivery_has_a_text_field(published, comms_lead):
    with Receiver("ok") as receiver:
        hook = webhooks.webhook_create(name="s", url=receiver.url, owner=comms_lead, format="slack")
        outbox_deliver_one(message_id=_delivery(published, hook).pk)
    [body] = receiver.json_bodies()
    assert body["text"].startswith("*[SEV1] Logins failing* — Investigating\n")


def test_a_500_is_retried_with_the_reason_recorded(published, comms_lead):
    with Receiver("error") as receiver:
        hook = webhooks.webhook_create(name="x", url=receiver.url, owner=comms_lead)
        message = _delivery(published, hook)
        assert outbox_deliver_one(message_id=message.pk) == "pending"
    message.refresh_from_db()
    assert message.last_error == "RuntimeError: HTTP 500 from receiver"
    assert message.next_attempt_at > message.created_at
    hook.refresh_from_db()
    assert hook.consecutive_failures == 1


def test_a_receiver_that_times_out_is_retried(published, comms_lead, settings):
    settings.COMMS_WEBHOOK_TIMEOUT_SECONDS = 0.3
    with Receiver("slow", delay=1.0) as receiver:
        hook = webhooks.webhook_create(name="x", url=receiver.url, owner=comms_lead)
        message = _delivery(published, hook)
        assert outbox_deliver_one(message_id=message.pk) == "pending"
    message.refresh_from_db()
    assert "timed out" in message.last_error


def test_repeated_failure_disables_the_webhook_and_tells_the_owner_once(
    published, comms_lead, settings
):
    settings.COMMS_WEBHOOK_DISABLE_AFTER = 3
    with Receiver("error") as receiver:
        hook = webhooks.webhook_create(name="x", url=receiver.url, owner=comms_lead)
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
    assert list(owner_mail.values_list("recipient", flat=True)) == [comms_lead.email]
    assert AuditEvent.objects.filter(action="comms.webhook.disabled").count() == 1
    webhooks.webhook_enable(webhook=hook, actor=comms_lead)
    hook.refresh_from_db()
    assert hook.active and hook.consecutive_failures == 0


# --- SSRF: only public addresses, vetted at delivery, connected to as vetted -------------

HOSTILE = [
    "http://127.1:{port}/",
    "http://0.0.0.0:{port}/",
    "http://0:{port}/",
    "http://2130706433:{port}/",
    "http://0x7f000001:{port}/",
    "http://0x7f.1:{port}/",
    "http://0177.0.0.1:{port}/",
    "http://localhost:{port}/",
    "http://LOCALHOST.:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::ffff:7f00:1]:{port}/",
    "http://[::1]:{port}/",
    "http://[::]:{port}/",
    "http://[64:ff9b::7f00:1]:{port}/",
    "http://[2002:7f00:1::]:{port}/",
    "http://127.0.0.1:5432/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://10.0.0.7/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://[fc00::1]/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "https://198.18.0.1/",
]


@pytest.fixture(scope="module")
def loopback_receiver():
    """One real receiver on 127.0.0.1 for the whole table: it must hear nothing."""
    with Receiver("ok") as receiver:
        yield receiver
    assert receiver.requests == []


@pytest.mark.parametrize("template", HOSTILE)
def test_a_webhook_to_an_internal_address_is_refused_at_creation(
    comms_lead, settings, template, loopback_receiver
):
    settings.COMMS_WEBHOOK_ALLOW = []
    url = template.format(port=loopback_receiver.port)
    with pytest.raises(ValidationError, match="Webhook URL refused"):
        webhooks.webhook_create(name="x", url=url, owner=comms_lead)
    assert not Webhook.objects.exists()


@pytest.mark.parametrize("template", HOSTILE)
def test_delivery_to_an_internal_address_is_refused_and_never_sent(
    published, comms_lead, settings, template, loopback_receiver
):
    """A hook stored before this check, or whose name now resolves elsewhere, is vetted
    again at delivery: the receiver listening on loopback hears nothing."""
    settings.COMMS_WEBHOOK_ALLOW = []
    url = template.format(port=loopback_receiver.port)
    hook = Webhook.objects.create(name="x", url=url, owner=comms_lead, created_at=NOW())
    message = _delivery(published, hook)
    assert outbox_deliver_one(message_id=message.pk) == "dead"
    assert loopback_receiver.requests == []
    message.refresh_from_db()
    assert message.last_error.startswith("refused: ")


def test_an_allow_listed_internal_receiver_gets_deliveries(published, comms_lead, settings):
    settings.COMMS_WEBHOOK_ALLOW = ["127.0.0.1/32"]
    with Receiver("ok") as receiver:
        hook = webhooks.webhook_create(name="x", url=receiver.url, owner=comms_lead)
        assert outbox_deliver_one(message_id=_delivery(published, hook).pk) == "delivered"
    assert len(receiver.accepted) == 1


def test_allowing_one_loopback_address_does_not_allow_the_rest(comms_lead, settings):
    settings.COMMS_WEBHOOK_ALLOW = ["127.0.0.1/32"]
    with pytest.raises(ValidationError, match="127.0.0.2 is a loopback address"):
        webhooks.webhook_create(name="x", url="http://127.0.0.2:9/", owner=comms_lead)


def test_the_connection_goes_to_the_address_that_was_vetted(
    published, comms_lead, settings, monkeypatch
):
    """DNS rebinding: the name resolves to an allowed address when checked and to another
    one afterwards. The delivery connects to the vetted address, resolving only once, and
    names the host in the Host header."""
    import socket

    settings.COMMS_WEBHOOK_ALLOW = ["127.0.0.1/32"]
    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["127.0.0.1", "127.0.0.2", "127.0.0.2"])
    calls = []

    def rebinding_resolver(host, port, *args, **kwargs):  # the boundary: the DNS answer
        if host != "hooks.example.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        calls.append(host)
        return real_getaddrinfo(next(answers), port, *args, **kwargs)

    with Receiver("ok") as receiver:
        hook = Webhook.objects.create(
            name="x",
            url=f"http://hooks.example.test:{receiver.port}/hook",
            owner=comms_lead,
            created_at=NOW(),
        )
        monkeypatch.setattr(socket, "getaddrinfo", rebinding_resolver)
        assert outbox_deliver_one(message_id=_delivery(published, hook).pk) == "delivered"
    assert calls == ["hooks.example.test"]
    [record] = receiver.accepted
    assert record["headers"]["Host"] == f"hooks.example.test:{receiver.port}"


def test_a_redirect_is_not_followed(published, comms_lead, settings):
    settings.COMMS_WEBHOOK_ALLOW = ["127.0.0.1/32"]
    with Receiver("ok") as inside:
        with Receiver("redirect", location=inside.url) as receiver:
            hook = webhooks.webhook_create(name="x", url=receiver.url, owner=comms_lead)
            message = _delivery(published, hook)
            assert outbox_deliver_one(message_id=message.pk) == "dead"
    assert len(receiver.requests) == 1 and inside.requests == []
    message.refresh_from_db()
    assert "HTTP 302 from receiver (redirects are not followed)" in message.last_error


def test_an_unresolvable_host_is_a_clear_error(comms_lead):
    with pytest.raises(ValidationError, match="could not be resolved"):
        webhooks.webhook_create(name="x", url="http://no-such-host.invalid/", owner=comms_lead)


def test_credentials_in_a_webhook_url_are_refused(comms_lead):
    with pytest.raises(ValidationError, match="user name or password"):
        webhooks.webhook_create(name="x", url="http://u:p@127.0.0.1:9/", owner=comms_lead)


@pytest.mark.parametrize("person", ["responder", "commander", "approver"])
def test_only_comms_leads_and_administrators_create_or_enable_webhooks(request, person):
    from django.core.exceptions import PermissionDenied

    user = request.getfixturevalue(person)
    with pytest.raises(PermissionDenied):
        webhooks.webhook_create(name="x", url="http://127.0.0.1:9/", owner=user)
    assert not Webhook.objects.exists()


def test_an_administrator_may_manage_webhooks(administrator):
    hook = webhooks.webhook_create(name="x", url="http://127.0.0.1:9/", owner=administrator)
    assert webhooks.webhook_enable(webhook=hook, actor=administrator).active


def test_responders_see_webhook_urls_redacted_and_cannot_post(as_user, comms_lead, commander):
    webhooks.webhook_create(
        name="x", url="http://127.0.0.1:9/T000/B000/secretpath", owner=comms_lead
    )

    page = as_user(commander).get("/comms/webhooks/").content.decode()
    assert "http://127.0.0.1:9/…" in page and "secretpath" not in page
    assert "Add a webhook" not in page
    response = as_user(commander).post(
        "/comms/webhooks/", {"name": "y", "url": "http://127.0.0.1:9/", "format": "json"}
    )
    assert response.status_code == 403
    assert Webhook.objects.count() == 1
    assert "secretpath" in as_user(comms_lead).get("/comms/webhooks/").content.decode()


def test_the_admin_shows_neither_the_secret_nor_an_editable_url(as_user, administrator):
    hook = webhooks.webhook_create(
        name="x", url="http://127.0.0.1:9/T0/secret", owner=administrator
    )

    page = as_user(administrator).get(f"/admin/comms/webhook/{hook.pk}/change/").content.decode()

    assert hook.secret not in page
    assert 'name="url"' not in page
