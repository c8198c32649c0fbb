"""Breaking the glass while Redis is down: the grant is issued at once, and the
notifications go out exactly once when Redis is back. Real PostgreSQL, a private Redis
that the test stops and starts, a real Celery worker and a real SMTP server."""

import time

import pytest

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
        assert "could not queue message" in caplog.text  # it tried, and did not wait

        redis.start()
        with celery_worker(env=worker_env(broker_url=redis.url, **smtp_sink.env())) as worker:
            # What the periodic sweep does once the broker answers again; a second sweep
            # racing the first must not deliver anything twice.
            queued = outbox_sweep() + outbox_sweep()
            wait_for(
                lambda: set(messages.values_list("state", flat=True)) == {"delivered"},
                timeout=60,
                what="the worker to deliver the notifications",
            )
            smtp_sink.wait_for(3)
            wait_for(
                lambda: worker.log_path.read_text().count("succeeded") >= queued,
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
