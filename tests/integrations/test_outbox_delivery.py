"""The outbox end to end: real PostgreSQL, real Redis, a real Celery worker process and a
real SMTP server on loopback. Nothing here is mocked."""

import time

import pytest
from django.db import transaction
from django.http import JsonResponse
from django.test import Client
from django.urls import path

from breakglass.accounts.decorators import public
from breakglass.audit.models import AuditEvent
from breakglass.audit.services import audit_record
from breakglass.outbox.models import OutboxMessage
from breakglass.outbox.services import outbox_dispatch, outbox_enqueue
from breakglass.outbox.tasks import outbox_deliver
from breakglass.project.periodic import periodic_ensure
from devkit.redis_server import private_redis
from devkit.workers import celery_beat, celery_worker, real_broker, wait_for, worker_env
from tests.services import require_program

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SWEEP = "outbox: sweep undelivered messages"


def _act_and_notify(key: str) -> OutboxMessage:
    """Stands for any audited action with a side effect: one transaction, both rows."""
    with transaction.atomic():
        audit_record(action="test.notified", data={"key": key})
        return outbox_enqueue(
            kind="email",
            idempotency_key=key,
            recipient="oncall@example.test",
            payload={
                "subject": f"Notice {key}",
                "body": "Something happened.",
                "to": ["oncall@example.test"],
            },
        )


@public
def _notify_view(request):
    """A stand-in console action, so the outage test goes through a real request."""
    message = _act_and_notify(request.POST["key"])
    return JsonResponse({"message": message.pk})


urlpatterns = [path("notify/", _notify_view)]


def _state(message: OutboxMessage) -> str:
    message.refresh_from_db()
    return message.state


def test_an_email_committed_with_an_action_is_delivered_by_the_worker_once(smtp_sink):
    outbox_deliver.apply_async(args=[0], retry=False)  # the suite's in-memory broker, in use
    with real_broker() as app:
        app.control.purge()  # nothing left over from an earlier run
        with celery_worker(env=worker_env(**smtp_sink.env())) as worker:
            message = _act_and_notify("delivered-once")
            wait_for(lambda: _state(message) == "delivered", what="the worker to deliver")
            [received] = smtp_sink.wait_for(1)
            assert received["Subject"] == "Notice delivered-once"
            assert received["X-Breakglass-Message"] == "delivered-once"
            assert smtp_sink.recipients() == ["oncall@example.test"]

            # A duplicate task (a redelivered message, a sweep racing the first task) and
            # a second enqueue with the same key change nothing.
            assert _act_and_notify("delivered-once") is None
            outbox_dispatch(message_ids=[message.pk])
            wait_for(lambda: "'skipped'" in worker.log_path.read_text(), what="the duplicate")
    assert len(smtp_sink.messages) == 1
    message.refresh_from_db()
    assert (message.attempts, message.last_error) == (1, "")
    # Back on the suite's in-memory broker, publishing still works for the next tests.
    outbox_deliver.apply_async(args=[0], retry=False)


@pytest.mark.urls(__name__)
def test_a_broker_outage_delays_delivery_but_never_the_action(smtp_sink, caplog):
    require_program("redis-server", why="the test stops and restarts its own Redis")
    with private_redis() as redis, real_broker(redis.url):
        redis.stop()
        started = time.monotonic()
        response = Client().post("/notify/", {"key": "during-outage"})
        elapsed = time.monotonic() - started
        # The request committed, promptly, with its audit event and a pending row.
        assert response.status_code == 200
        assert elapsed < 10, f"the request took {elapsed:.1f}s with the broker down"
        message = OutboxMessage.objects.get(pk=response.json()["message"])
        assert "could not queue 1 message(s)" in caplog.text  # it did try the dead broker
        assert AuditEvent.objects.filter(action="test.notified").count() == 1
        assert _state(message) == "pending"

        redis.start()
        # Nobody re-sends the task: beat's own schedule runs the sweep, which queues it.
        sweep = periodic_ensure(
            name=SWEEP, task="breakglass.outbox.tasks.outbox_sweep_task", every_seconds=30
        )
        from django_celery_beat.models import IntervalSchedule

        sweep.interval, _ = IntervalSchedule.objects.get_or_create(
            every=1, period=IntervalSchedule.SECONDS
        )
        sweep.save()  # what an operator would do in the admin, to not wait 30 s here
        env = worker_env(broker_url=redis.url, **smtp_sink.env())
        with celery_worker(env=env), celery_beat(env=env):
            wait_for(
                lambda: _state(message) == "delivered", timeout=60, what="the sweep to deliver"
            )
    [received] = smtp_sink.wait_for(1)
    assert received["Subject"] == "Notice during-outage"
    message.refresh_from_db()
    assert message.attempts == 1
