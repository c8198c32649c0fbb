"""Publishing end to end: real PostgreSQL, Redis and Celery worker, a real SMTP sink and
webhook receivers on loopback, one of which fails every other request."""

import json
from collections import Counter

import pytest
from django.utils import timezone

from breakglass.outbox.models import OutboxMessage
from breakglass.outbox.services import outbox_dispatch
from comms import incidents, selectors, subscribers, updates, webhooks
from comms.selectors import FANOUT_KINDS
from devkit.receivers import Receiver, signature_valid
from devkit.workers import celery_worker, real_broker, wait_for, worker_env
from tests.comms.conftest import subscriber_make

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _rows(update):
    return OutboxMessage.objects.filter(source=update.outbox_source).exclude(kind__in=FANOUT_KINDS)


def test_a_reviewed_update_reaches_every_subscriber_and_webhook_exactly_once(
    smtp_sink, tmp_path, commander, comms_lead, sso
):
    emails = [f"reader{i}@example.test" for i in range(25)]
    for email in emails:
        subscriber_make(email)
    subscribers.subscriber_subscribe(email="unconfirmed@example.test")
    incident = incidents.incident_declare(
        title="Logins failing",
        severity=1,
        actor=commander,
        commander=commander,
        comms_lead=comms_lead,
        services=[(sso, "major_outage")],
    )
    with Receiver("ok") as steady, Receiver("flaky") as flaky, real_broker() as app:
        app.control.purge()
        steady_hook = webhooks.webhook_create(name="steady", url=steady.url, owner=comms_lead)
        webhooks.webhook_create(name="flaky", url=flaky.url, owner=comms_lead, format="slack")
        env = worker_env(**smtp_sink.env(), BREAKGLASS_DATA_DIR=str(tmp_path))
        with celery_worker(env=env):
            update = updates.status_update_draft(
                incident=incident,
                audience="external",
                body="We are investigating {{ affected_services }}.",
                actor=comms_lead,
            )
            updates.status_update_review(update=update, reviewer=commander, approve=True)
            updates.status_update_publish(update=update, actor=comms_lead)

            wait_for(lambda: _rows(update).count() == 27, what="the fan-out")
            # The flaky receiver answered 500 first; the row waits for its back-off.
            # Bring the retry forward instead of sleeping through it.
            flaky_row = _rows(update).get(kind="comms_webhook", recipient__startswith="flaky")
            wait_for(
                lambda: OutboxMessage.objects.get(pk=flaky_row.pk).attempts == 1, what="1st try"
            )
            OutboxMessage.objects.filter(pk=flaky_row.pk, state="pending").update(
                next_attempt_at=timezone.now()
            )
            outbox_dispatch(message_ids=[flaky_row.pk])
            wait_for(
                lambda: _rows(update).filter(state="delivered").count() == 27,
                timeout=60,
                what="every delivery",
            )
            wait_for(
                lambda: (tmp_path / "test-status-site/api/v2/summary.json").exists(),
                what="the static re-export",
            )

    received = Counter(smtp_sink.recipients())
    assert received == Counter(emails)  # each once; the unconfirmed address got nothing
    message = next(m for m in smtp_sink.messages if m["To"] == "reader0@example.test")
    assert message["List-Unsubscribe"].strip().startswith("<http")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "We are investigating Single sign-on." in message.get_content()

    assert len(steady.accepted) == 1 and signature_valid(steady.accepted[0], steady_hook.secret)
    assert (len(flaky.requests), len(flaky.accepted)) == (2, 1)
    flaky_row.refresh_from_db()
    assert flaky_row.attempts == 2

    report = selectors.update_deliveries(update=update)
    assert (report["delivered"], report["failed"], report["pending"]) == (27, 0, 0)
    assert updates.status_update_resend_failed(update=update, actor=commander) == 0

    summary = json.loads((tmp_path / "test-status-site/api/v2/summary.json").read_text())
    assert summary["incidents"][0]["incident_updates"][0]["body"] == (
        "We are investigating Single sign-on."
    )
