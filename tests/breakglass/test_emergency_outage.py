"""Breaking the glass while Redis is down: the grant is issued at once, and the
notifications go out exactly once when Redis is back. Real PostgreSQL, a private Redis
that the test stops and starts, a real Celery worker and a real SMTP server."""

import time

import pytest
from django.db import transaction

from breakglass.access.grants import grant_self_issue
from breakglass.access.models import Grant
from breakglass.audit.models import AuditEvent
from breakglass.outbox.models import OutboxMessage
from breakglass.outbox.services import outbox_sweep
from devkit.redis_server import private_redis
from devkit.workers import celery_worker, real_broker, wait_for, worker_env
from tests.breakglass.conftest import path_make
from tests.services import require_program

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_emergency_issue_with_redis_down_succeeds_and_notifies_once_redis_is_back(
    smtp_sink, responder, approver, second_approver, caplog
):
    require_program("redis-server", why="the test stops and restarts its own Redis")
    from breakglass.keys.services import keys_bootstrap

    keys_bootstrap()
    path = path_make("sso-backup", approvals_required=2, allow_self_issue=True)
    with private_redis() as redis, real_broker(redis.url):
        redis.stop()
        started = time.monotonic()
        grant, token = grant_self_issue(
            path=path, requester=responder, reason="IdP down", confirmation="sso-backup"
        )
        elapsed = time.monotonic() - started
        assert elapsed < 10, f"breaking the glass took {elapsed:.1f}s with Redis down"
        assert token.count(".") == 2
        assert Grant.objects.get().state == Grant.State.ISSUED
        assert AuditEvent.objects.filter(action="grant.self_issued").count() == 1
        messages = OutboxMessage.objects.filter(source=f"breakglass.grant:{grant.pk}")
        assert sorted(messages.values_list("state", flat=True)) == ["pending"] * 3
        assert "could not queue 3 message(s)" in caplog.text  # it tried, and did not wait

        redis.start()
        with celery_worker(env=worker_env(broker_url=redis.url, **smtp_sink.env())) as worker:
            # What the periodic sweep does once the broker answers again; a second sweep
            # racing the first must not deliver anything twice.
            assert outbox_sweep() == 3
            assert outbox_sweep() == 3
            wait_for(
                lambda: set(messages.values_list("state", flat=True)) == {"delivered"},
                timeout=60,
                what="the worker to deliver the notifications",
            )
            smtp_sink.wait_for(3)
            wait_for(
                lambda: worker.log_path.read_text().count("succeeded") >= 2,
                what="every queued task, duplicates included, to finish",
            )
    assert sorted(smtp_sink.recipients()) == [
        "alex-approver@example.test",
        "bea-approver@example.test",
        "security@example.test",
    ]
    assert len(smtp_sink.messages) == 3
    assert all(
        m["Subject"].startswith("[Breakglass] EMERGENCY self-issue") for m in smtp_sink.messages
    )
    assert all(m.attempts == 1 for m in messages)


def test_a_hung_broker_costs_an_emergency_grant_one_short_attempt(
    responder, approver, second_approver, caplog
):
    """Redis stopped with SIGSTOP accepts connections and never answers: the grant waits
    for one publish attempt per transaction, bounded by the short publish timeout, not
    one 5 s socket timeout per notification. bench/hung_broker.py measures the time."""
    require_program("redis-server", why="the test freezes its own Redis")
    from django.conf import settings

    from breakglass.keys.services import keys_bootstrap
    from breakglass.outbox import services
    from breakglass.outbox.tasks import outbox_deliver_batch

    keys_bootstrap()
    path = path_make("sso-backup", approvals_required=2, allow_self_issue=True)
    publishes = []
    original = outbox_deliver_batch.apply_async

    def spy(*args, **kwargs):
        publishes.append(kwargs["args"][0])
        return original(*args, **kwargs)

    with private_redis() as redis, real_broker(redis.url):
        redis.freeze()
        try:
            outbox_deliver_batch.apply_async = spy
            grant, _ = grant_self_issue(
                path=path, requester=responder, reason="IdP down", confirmation="sso-backup"
            )
            connection = services._publish.connection
        finally:
            del outbox_deliver_batch.apply_async
            redis.thaw()
        messages = OutboxMessage.objects.filter(source=f"breakglass.grant:{grant.pk}")
        # One attempt carrying every row of the transaction, and it gave up.
        assert publishes == [sorted(messages.values_list("pk", flat=True))]
        assert len(publishes[0]) == 3
        assert "could not queue 3 message(s)" in caplog.text
        assert set(messages.values_list("state", flat=True)) == {"pending"}
        # ...after at most the short publish timeout, not the workers' socket timeout.
        assert settings.BREAKGLASS_BROKER_PUBLISH_TIMEOUT_MS <= 500
        assert connection is None  # dropped after the failure; the next one starts afresh
        assert services.publish_connection().transport_options["socket_timeout"] <= 0.5


def test_a_broker_that_restarted_since_the_last_publish_costs_no_delivery(responder, caplog):
    """The kept publish connection died with the old Redis: the next transaction's
    message goes out on a fresh connection at once, not 30 s later through the sweep."""
    require_program("redis-server", why="the test restarts its own Redis")
    import redis as redis_client

    from breakglass.outbox.services import outbox_enqueue

    def notify(key):
        with transaction.atomic():
            outbox_enqueue(kind="email", idempotency_key=key, payload={})

    with private_redis() as redis, real_broker(redis.url):
        notify("before-restart")
        redis.stop()
        redis.start()  # same port, empty
        notify("after-restart")
        queued = redis_client.Redis.from_url(redis.url).llen("celery")
    assert queued == 1
    assert "could not queue" not in caplog.text
