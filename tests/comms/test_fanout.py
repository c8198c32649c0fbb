from django.core import mail

from breakglass.outbox.models import OutboxMessage
from breakglass.outbox.services import outbox_deliver_one
from comms import incidents, selectors, subscribers, updates, webhooks
from comms.outbox_handlers import deliver_fanout, deliver_fanout_batch
from comms.selectors import FANOUT_KINDS
from tests.comms.conftest import subscriber_make


def _fanout(update):
    """Run the fan-out and its batches in process, as the worker would."""
    message = OutboxMessage.objects.get(kind="comms_fanout", source=update.outbox_source)
    deliver_fanout(message)
    for batch in OutboxMessage.objects.filter(
        kind="comms_fanout_batch", source=update.outbox_source
    ):
        deliver_fanout_batch(batch)
    return OutboxMessage.objects.filter(source=update.outbox_source).exclude(kind__in=FANOUT_KINDS)


def test_fanout_writes_one_row_per_recipient_and_never_twice(published, sso, vpn, comms_lead):
    subscriber_make("all@example.test")
    subscriber_make("sso@example.test", services_=[sso])
    subscriber_make("vpn-only@example.test", services_=[vpn])  # not affected
    subscribers.subscriber_subscribe(email="pending@example.test")  # never confirmed
    gone = subscriber_make("gone@example.test")
    subscribers.subscriber_unsubscribe(token=gone.token)
    subscriber_make("drill@example.test", drill=True)
    webhooks.webhook_create(name="chat", url="http://127.0.0.1:9/hook", owner=comms_lead)
    webhooks.webhook_create(name="drill", url="http://127.0.0.1:9/d", owner=comms_lead, drill=True)

    rows = _fanout(published)
    assert sorted(rows.filter(kind="comms_email").values_list("recipient", flat=True)) == [
        "all@example.test",
        "sso@example.test",
    ]
    assert list(rows.filter(kind="comms_webhook").values_list("recipient", flat=True)) == [
        "chat <http://127.0.0.1:9/…>"
    ]
    # A crashed or repeated fan-out adds nothing.
    assert _fanout(published).count() == 3


def test_subscriber_email_carries_one_click_unsubscribe_headers(published, settings):
    sub = subscriber_make("reader@example.test")
    [row] = _fanout(published).filter(kind="comms_email")
    assert outbox_deliver_one(message_id=row.pk) == "delivered"
    [message] = [m for m in mail.outbox if m.to == ["reader@example.test"]]
    link = f"{settings.BREAKGLASS_BASE_URL}/status/unsubscribe/{sub.token}/"
    assert message.extra_headers["List-Unsubscribe"] == f"<{link}>"
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link in message.body
    assert "Next update by" in message.body
    assert message.subject == "[SEV1] Logins failing - Investigating"


def test_drill_updates_reach_drill_subscribers_only(commander, comms_lead, sso):
    subscriber_make("real@example.test")
    subscriber_make("drill@example.test", drill=True)
    drill = incidents.incident_declare(
        title="Game day",
        severity=1,
        actor=commander,
        comms_lead=comms_lead,
        drill=True,
        services=[(sso, "major_outage")],
    )
    update = updates.status_update_draft(
        incident=drill, audience="external", body="x", actor=comms_lead
    )
    updates.status_update_review(update=update, reviewer=commander, approve=True)
    updates.status_update_publish(update=update, actor=comms_lead)
    assert list(_fanout(update).values_list("recipient", flat=True)) == ["drill@example.test"]
    assert not OutboxMessage.objects.filter(kind="comms_status_export").exists()


def test_resend_requeues_only_failed_deliveries(published, commander):
    subscriber_make("a@example.test")
    subscriber_make("b@example.test")
    rows = list(_fanout(published).order_by("pk"))
    OutboxMessage.objects.filter(pk=rows[0].pk).update(state="delivered")
    OutboxMessage.objects.filter(pk=rows[1].pk).update(state="dead", last_error="550 mailbox full")
    report = selectors.update_deliveries(update=published)
    assert (report["delivered"], report["failed"]) == (1, 1)
    assert report["failures"][0]["last_error"] == "550 mailbox full"
    assert updates.status_update_resend_failed(update=published, actor=commander) == 1
    states = dict(
        OutboxMessage.objects.filter(pk__in=[r.pk for r in rows]).values_list("pk", "state")
    )
    assert states == {rows[0].pk: "delivered", rows[1].pk: "pending"}


def test_fanout_batches_the_audience(published, settings, monkeypatch):
    monkeypatch.setattr("comms.outbox_handlers.FANOUT_BATCH", 2)
    for i in range(5):
        subscriber_make(f"r{i}@example.test")
    rows = _fanout(published)
    batches = OutboxMessage.objects.filter(kind="comms_fanout_batch")
    assert sorted(len(b.payload["ids"]) for b in batches if b.payload["group"] == "sub") == [
        1,
        2,
        2,
    ]
    assert rows.count() == 5
    # Running every batch again creates nothing new.
    for batch in batches:
        deliver_fanout_batch(batch)
    assert rows.count() == 5
