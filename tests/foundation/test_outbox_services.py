"""The outbox: enqueued with the action, claimed once, retried with back-off, swept."""

import time
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import transaction
from django.utils import timezone

from breakglass.audit.models import AuditEvent
from breakglass.outbox.handlers import PermanentFailure, register
from breakglass.outbox.models import OutboxMessage
from breakglass.outbox.services import (
    CLAIM_LEASE,
    backoff,
    outbox_claim,
    outbox_deliver_one,
    outbox_enqueue,
    outbox_retry,
    outbox_sweep,
)
from breakglass.project.celery import app

pytestmark = pytest.mark.django_db

# Later than any row the tests create at the real time, so those rows are due at NOW.
NOW = (timezone.now() + timedelta(hours=1)).replace(microsecond=0)
failures: list[str] = []


@register("test_flaky")
def _flaky(message):
    failures.append(message.idempotency_key)
    raise ConnectionError("receiver is down")


@register("test_refused")
def _refused(message):
    raise PermanentFailure("receiver says this address does not exist")


@pytest.fixture
def eager_tasks():
    """Run tasks inline when queued, so a dispatch is observable as a delivery."""
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def _email(key="k1", **overrides):
    fields = {
        "kind": "email",
        "idempotency_key": key,
        "recipient": "ops@example.test",
        "payload": {"subject": "Grant issued", "body": "hello", "to": ["ops@example.test"]},
    }
    return outbox_enqueue(**{**fields, **overrides})


def test_a_second_enqueue_with_the_same_key_is_a_no_op():
    first = _email("grant:1:ops@example.test")
    assert _email("grant:1:ops@example.test") is None
    assert OutboxMessage.objects.get().pk == first.pk


def test_a_row_rolls_back_with_its_action():
    with pytest.raises(RuntimeError), transaction.atomic():
        _email()
        raise RuntimeError("the action failed")
    assert not OutboxMessage.objects.exists()


def test_the_task_is_queued_only_after_commit(django_capture_on_commit_callbacks, eager_tasks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = _email()
    assert len(callbacks) == 1 and not mail.outbox
    callbacks[0]()
    message.refresh_from_db()
    assert message.state == OutboxMessage.State.DELIVERED
    assert len(mail.outbox) == 1


def test_a_second_claim_gets_nothing():
    message = _email()
    claimed = outbox_claim(message_id=message.pk)
    assert (claimed.state, claimed.attempts) == (OutboxMessage.State.SENDING, 1)
    assert outbox_claim(message_id=message.pk) is None


def test_a_row_that_is_not_due_cannot_be_claimed():
    message = _email()
    OutboxMessage.objects.filter(pk=message.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=1)
    )
    assert outbox_claim(message_id=message.pk) is None


def test_delivering_twice_sends_one_email():
    message = _email()
    assert outbox_deliver_one(message_id=message.pk) == OutboxMessage.State.DELIVERED
    assert outbox_deliver_one(message_id=message.pk) == "skipped"
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["ops@example.test"]
    assert sent.extra_headers["X-Breakglass-Message"] == message.idempotency_key
    message.refresh_from_db()
    assert message.delivered_at is not None and message.attempts == 1


def test_back_off_doubles_and_is_capped():
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert backoff(30) == timedelta(hours=1)


def test_a_failed_attempt_records_the_error_and_waits_before_the_next():
    message = _email(kind="test_flaky")
    with time_machine.travel(NOW, tick=False):
        assert outbox_deliver_one(message_id=message.pk) == OutboxMessage.State.PENDING
        message.refresh_from_db()
        assert message.attempts == 1
        assert message.last_error == "ConnectionError: receiver is down"
        assert message.next_attempt_at == NOW + timedelta(seconds=10)
        assert outbox_deliver_one(message_id=message.pk) == "skipped"  # not due yet
    with time_machine.travel(NOW + timedelta(seconds=11), tick=False):
        assert outbox_deliver_one(message_id=message.pk) == OutboxMessage.State.PENDING
        message.refresh_from_db()
        assert message.next_attempt_at == NOW + timedelta(seconds=31)


def test_a_row_is_dead_after_its_last_attempt():
    message = _email(kind="test_flaky", max_attempts=3)
    moment = NOW
    for _ in range(3):
        with time_machine.travel(moment, tick=False):
            state = outbox_deliver_one(message_id=message.pk)
        moment += timedelta(hours=1)
    assert state == OutboxMessage.State.DEAD
    message.refresh_from_db()
    assert (message.state, message.attempts) == (OutboxMessage.State.DEAD, 3)
    assert "receiver is down" in message.last_error
    with time_machine.travel(moment, tick=False):
        assert outbox_deliver_one(message_id=message.pk) == "skipped"


def test_a_permanent_failure_is_dead_at_once():
    message = _email(kind="test_refused")
    assert outbox_deliver_one(message_id=message.pk) == OutboxMessage.State.DEAD
    message.refresh_from_db()
    assert (message.attempts, message.last_error) == (
        1,
        "receiver says this address does not exist",
    )


def test_an_unknown_kind_is_dead_with_a_reason():
    message = _email(kind="carrier_pigeon")
    assert outbox_deliver_one(message_id=message.pk) == OutboxMessage.State.DEAD
    message.refresh_from_db()
    assert "no handler registered for outbox kind 'carrier_pigeon'" in message.last_error


def test_an_email_without_a_recipient_is_dead():
    message = _email(recipient="", payload={"subject": "x", "body": "y"})
    assert outbox_deliver_one(message_id=message.pk) == OutboxMessage.State.DEAD
    assert not mail.outbox


def test_the_sweep_delivers_due_rows_whose_task_never_ran(eager_tasks):
    due = _email("due")
    later = _email("later")
    OutboxMessage.objects.filter(pk=later.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    assert outbox_sweep() == 1
    due.refresh_from_db()
    later.refresh_from_db()
    assert due.state == OutboxMessage.State.DELIVERED
    assert later.state == OutboxMessage.State.PENDING
    assert len(mail.outbox) == 1


def test_the_sweep_releases_a_row_held_by_a_dead_worker_past_the_lease(eager_tasks):
    message = _email()
    with time_machine.travel(NOW, tick=False):
        outbox_claim(message_id=message.pk)  # ...and the worker dies here
    with time_machine.travel(NOW + CLAIM_LEASE - timedelta(seconds=1), tick=False):
        outbox_sweep()
        message.refresh_from_db()
        assert message.state == OutboxMessage.State.SENDING  # still within its lease
    with time_machine.travel(NOW + CLAIM_LEASE + timedelta(seconds=1), tick=False):
        outbox_sweep()
    message.refresh_from_db()
    assert (message.state, message.attempts) == (OutboxMessage.State.DELIVERED, 2)
    assert len(mail.outbox) == 1
    # The resend carries the same message id as the lost attempt, so a receiver that got
    # both can drop the second.
    assert mail.outbox[0].extra_headers["X-Breakglass-Message"] == message.idempotency_key


def test_a_lost_row_with_no_attempts_left_is_dead_not_retried(eager_tasks):
    message = _email(max_attempts=1)
    with time_machine.travel(NOW, tick=False):
        outbox_claim(message_id=message.pk)
    with time_machine.travel(NOW + CLAIM_LEASE * 2, tick=False):
        outbox_sweep()
    message.refresh_from_db()
    assert message.state == OutboxMessage.State.DEAD
    assert "worker lost" in message.last_error
    assert not mail.outbox


def test_retry_revives_dead_rows_and_never_touches_delivered_ones(
    eager_tasks, django_capture_on_commit_callbacks, administrator
):
    dead = _email("dead", kind="test_refused")
    delivered = _email("delivered")
    outbox_deliver_one(message_id=dead.pk)
    outbox_deliver_one(message_id=delivered.pk)
    OutboxMessage.objects.filter(pk=dead.pk).update(kind="email")  # the receiver was fixed
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_retry(message_ids=[dead.pk, delivered.pk], actor=administrator) == 1
    dead.refresh_from_db()
    delivered.refresh_from_db()
    assert dead.state == OutboxMessage.State.DELIVERED
    assert delivered.attempts == 1  # untouched
    assert len(mail.outbox) == 2  # one each, never a duplicate
    event = AuditEvent.objects.get(action="outbox.retried")
    assert (event.actor_label, event.data) == ("ada-admin", {"messages": [dead.pk]})


def test_a_task_out_of_time_is_not_kept_running_by_a_dispatch(monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    from breakglass.outbox import services
    from breakglass.outbox.tasks import outbox_deliver_batch

    def out_of_time(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(outbox_deliver_batch, "apply_async", out_of_time)
    with pytest.raises(SoftTimeLimitExceeded):
        services.outbox_dispatch(message_ids=[1, 2])


def test_a_broker_outage_during_dispatch_is_swallowed_for_the_sweep(monkeypatch):
    from breakglass.outbox import services
    from breakglass.outbox.tasks import outbox_deliver_batch

    calls = []

    def broker_down(*args, **kwargs):
        calls.append(args)
        raise ConnectionRefusedError("redis is down")

    monkeypatch.setattr(outbox_deliver_batch, "apply_async", broker_down)
    services.publish_reset()  # a fresh connection: its failure is not retried
    services.outbox_dispatch(message_ids=list(range(1, services.DISPATCH_CHUNK * 3)))
    assert len(calls) == 1  # stops at the first failure instead of paying it per chunk


def test_a_transaction_queues_all_its_rows_in_one_message(
    monkeypatch, django_capture_on_commit_callbacks
):
    from django.db import transaction

    from breakglass.outbox import services
    from breakglass.outbox.tasks import outbox_deliver_batch

    calls = []
    monkeypatch.setattr(
        outbox_deliver_batch, "apply_async", lambda *a, **kw: calls.append(kw["args"][0])
    )
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        rows = [
            services.outbox_enqueue(kind="email", idempotency_key=f"k{n}", payload={})
            for n in range(4)
        ]
        try:
            with transaction.atomic():
                services.outbox_enqueue(kind="email", idempotency_key="rolled-back", payload={})
                raise RuntimeError
        except RuntimeError:
            pass
        assert calls == []  # nothing before commit
    ids = [row.pk for row in rows]
    assert len(calls) == 1
    assert calls[0][:4] == ids


@register("test_slow")
def _slow(message):
    """Holds the delivery until the worker's heartbeat has renewed the claim."""
    started = message.claimed_at
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        renewed = OutboxMessage.objects.get(pk=message.pk).claimed_at
        if renewed > started:
            return
        time.sleep(0.02)
    raise AssertionError("the claim was never renewed")


@pytest.mark.django_db(transaction=True)
def test_a_slow_delivery_renews_its_claim_so_the_sweep_never_takes_it_over(monkeypatch):
    from breakglass.outbox import services

    monkeypatch.setattr(services, "CLAIM_RENEW_EVERY", timedelta(milliseconds=50))
    message = _email(kind="test_slow")
    assert outbox_deliver_one(message_id=message.pk) == OutboxMessage.State.DELIVERED
    message.refresh_from_db()
    assert (message.attempts, message.last_error) == (1, "")


def test_email_enqueue_queues_one_email_row_in_the_house_format(db):
    from breakglass.outbox.services import email_enqueue

    row = email_enqueue(
        to=["a@example.test", ""], key="k1", subject="S", body="B", source="x:1", html="<p>B</p>"
    )
    assert (row.kind, row.recipient, row.source) == ("email", "a@example.test", "x:1")
    assert row.payload == {
        "subject": "S",
        "body": "B",
        "to": ["a@example.test"],
        "html": "<p>B</p>",
    }
    assert email_enqueue(to="a@example.test", key="k1", subject="S", body="B") is None  # once
    assert email_enqueue(to="", key="k2", subject="S", body="B") is None  # nobody to tell
    assert OutboxMessage.objects.count() == 1


def test_several_rows_are_queued_by_one_insert_and_existing_keys_are_skipped(db):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from breakglass.outbox.services import email_enqueue_many

    existing = _email("grant:1:a@example.test")
    with CaptureQueriesContext(connection) as queries:
        rows = email_enqueue_many(
            [
                {
                    "to": "a@example.test",
                    "key": "grant:1:a@example.test",
                    "subject": "S",
                    "body": "B",
                },
                {
                    "to": "b@example.test",
                    "key": "grant:1:b@example.test",
                    "subject": "S",
                    "body": "B",
                },
                {"to": "", "key": "grant:1:nobody", "subject": "S", "body": "B"},
                {
                    "to": "c@example.test",
                    "key": "grant:1:c@example.test",
                    "subject": "S",
                    "body": "B",
                },
                {
                    "to": "b@example.test",
                    "key": "grant:1:b@example.test",
                    "subject": "S",
                    "body": "B",
                },
            ]
        )
    assert [row is None for row in rows] == [True, False, True, False, True]
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["INSERT"]
    assert rows[1].recipient == "b@example.test" and rows[3].payload["to"] == ["c@example.test"]
    assert OutboxMessage.objects.count() == 3
    assert OutboxMessage.objects.get(pk=existing.pk).recipient == "ops@example.test"
