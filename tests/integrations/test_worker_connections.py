"""A Celery worker keeps its database connection from one task to the next (a new
PostgreSQL backend per task cost more than most tasks), and a connection the database
dropped in between is replaced before the next task uses it: nothing fails."""

import pytest
from django.db import connection

from breakglass.outbox.models import OutboxMessage
from breakglass.outbox.services import outbox_dispatch, outbox_enqueue
from devkit.workers import celery_worker, real_broker, wait_for, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _email(key: str) -> OutboxMessage:
    return outbox_enqueue(
        kind="email",
        idempotency_key=key,
        recipient="oncall@example.test",
        payload={"subject": key, "body": "b", "to": ["oncall@example.test"]},
    )


def _worker_backends() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {row[0] for row in cursor.fetchall()}


def _delivered(message: OutboxMessage) -> bool:
    message.refresh_from_db()
    return message.state == OutboxMessage.State.DELIVERED


def test_a_worker_reuses_its_connection_and_replaces_one_the_database_dropped(smtp_sink):
    with real_broker() as app:
        app.control.purge()
        # One pool process, so every task below runs in the same process.
        with celery_worker(concurrency=1, env=worker_env(**smtp_sink.env())):
            first = _email("first")
            wait_for(lambda: _delivered(first), what="the first delivery")
            backends = _worker_backends()
            assert backends

            for key in ("second", "third"):
                message = _email(key)
                wait_for(lambda message=message: _delivered(message), what=f"the {key}")
            assert _worker_backends() == backends  # the same backend served every task

            with connection.cursor() as cursor:  # the database drops it (a restart, a DBA)
                for pid in backends:
                    cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            wait_for(lambda: not (_worker_backends() & backends), what="the backend to go")

            after = _email("after the drop")
            outbox_dispatch(message_ids=[after.pk])  # a duplicate message: still sent once
            wait_for(lambda: _delivered(after), what="the delivery after the drop")
            assert after.attempts == 1 and after.last_error == ""
    assert sorted(m["Subject"] for m in smtp_sink.messages) == sorted(
        ["first", "second", "third", "after the drop"]
    )
