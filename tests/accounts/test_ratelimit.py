"""The rate limiter on the doors anyone can knock on: log-in, OTP, subscribe, confirm."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from breakglass.accounts import ratelimit
from breakglass.audit.models import AuditEvent
from breakglass.outbox.models import OutboxMessage
from comms import subscribers
from comms.models import Subscriber

pytestmark = pytest.mark.django_db


def _client(address: str = "198.51.100.7") -> Client:
    return Client(REMOTE_ADDR=address)


def test_a_flood_of_anonymous_subscriptions_sends_little_mail_and_no_audit_events(settings):
    before = AuditEvent.objects.count()
    client = _client()

    statuses = [
        client.post("/status/subscribe/", {"email": f"victim{n}@example.test"}).status_code
        for n in range(80)
    ]

    limit = settings.COMMS_RATELIMIT_SUBSCRIBE_CLIENT[0]
    assert statuses.count(200) == limit and statuses.count(429) == 80 - limit
    assert OutboxMessage.objects.filter(idempotency_key__startswith="comms.confirm:").count() == (
        limit
    )
    assert Subscriber.objects.count() == limit
    assert AuditEvent.objects.count() == before


def test_the_refusal_says_how_long_to_wait(settings):
    settings.COMMS_RATELIMIT_SUBSCRIBE_CLIENT = (1, 3600)
    client = _client()
    client.post("/status/subscribe/", {"email": "a@example.test"})

    response = client.post("/status/subscribe/", {"email": "b@example.test"})

    assert response.status_code == 429
    assert b"Too many attempts. Try again in" in response.content
    assert 0 < int(response["Retry-After"]) <= 3600


def test_one_address_is_limited_whatever_the_client(settings):
    from breakglass.access.models import CriticalService, Team

    team = Team.objects.create(name="Platform", slug="platform")
    sso = CriticalService.objects.create(name="SSO", slug="sso", owning_team=team, tier=1)
    settings.COMMS_RATELIMIT_SUBSCRIBE_ADDRESS = (2, 3600)
    statuses = [
        _client(f"203.0.113.{n}")
        .post("/status/subscribe/", {"email": "target@example.test", "services": [sso.pk]})
        .status_code
        for n in range(5)
    ]
    assert statuses == [200, 200, 429, 429, 429]


def test_another_client_is_not_held_back_by_a_noisy_one(settings):
    settings.COMMS_RATELIMIT_SUBSCRIBE_CLIENT = (1, 3600)
    _client("198.51.100.1").post("/status/subscribe/", {"email": "a@example.test"})
    assert (
        _client("198.51.100.1").post("/status/subscribe/", {"email": "b@example.test"}).status_code
        == 429
    )
    assert (
        _client("198.51.100.2").post("/status/subscribe/", {"email": "c@example.test"}).status_code
        == 200
    )


def test_the_window_resets(settings):
    settings.COMMS_RATELIMIT_SUBSCRIBE_CLIENT = (1, 3600)
    start = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    with time_machine.travel(start, tick=False):
        assert _client().post("/status/subscribe/", {"email": "a@example.test"}).status_code == 200
        assert _client().post("/status/subscribe/", {"email": "b@example.test"}).status_code == 429
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        assert _client().post("/status/subscribe/", {"email": "b@example.test"}).status_code == 200


def test_confirm_links_are_limited_per_link(settings):
    settings.COMMS_RATELIMIT_CONFIRM_LINK = (2, 3600)
    sub = subscribers.subscriber_subscribe(email="reader@example.test")
    url = f"/status/subscribe/confirm/{sub.token}/"

    statuses = [_client(f"203.0.113.{n}").post(url).status_code for n in range(3)]

    assert statuses == [200, 200, 429]


def test_guessing_confirm_links_is_limited_per_client(settings):
    settings.COMMS_RATELIMIT_CONFIRM_CLIENT = (3, 3600)
    client = _client()
    statuses = [client.post(f"/status/subscribe/confirm/guess{n}/").status_code for n in range(5)]
    assert statuses == [404, 404, 404, 429, 429]


def test_password_log_in_is_limited_per_client(settings, responder):
    settings.BREAKGLASS_RATELIMIT_LOGIN = (3, 300)
    client = _client()
    for _ in range(3):
        client.post("/accounts/login/", {"username": "nobody", "password": "wrong"})

    response = client.post(
        "/accounts/login/", {"username": responder.username, "password": "irrelevant"}
    )

    assert response.status_code == 429
    assert b"Too many attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_the_otp_step_is_limited_per_client(settings, responder):
    settings.BREAKGLASS_RATELIMIT_OTP = (2, 300)
    client = _client()
    client.force_login(responder)
    for _ in range(2):
        assert client.post("/accounts/verify/", {"otp_token": "000000"}).status_code == 200

    response = client.post("/accounts/verify/", {"otp_token": "000000"})

    assert response.status_code == 429
    assert b"Too many attempts" in response.content


def test_behind_a_proxy_the_last_forwarded_address_is_the_client(settings):
    settings.BREAKGLASS_CLIENT_IP_HEADER = "X-Forwarded-For"
    settings.COMMS_RATELIMIT_SUBSCRIBE_CLIENT = (1, 3600)
    proxy = "10.0.0.2"
    # The client forges the first entry; the proxy appended the real one.
    first = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.9")
    second = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="2.2.2.2, 198.51.100.9")
    other = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="198.51.100.10")

    assert first.post("/status/subscribe/", {"email": "a@example.test"}).status_code == 200
    assert second.post("/status/subscribe/", {"email": "b@example.test"}).status_code == 429
    assert other.post("/status/subscribe/", {"email": "c@example.test"}).status_code == 200


def test_a_broken_counter_fails_open_for_log_in_and_closed_for_subscribe(monkeypatch, responder):
    # The database refuses the counter's statement (a real error from the real database).
    monkeypatch.setattr(ratelimit, "_UPSERT", "SELECT hits FROM no_such_rate_limit_table")

    login = _client().post("/accounts/login/", {"username": "nobody", "password": "wrong"})
    subscribe = _client().post("/status/subscribe/", {"email": "a@example.test"})

    assert login.status_code == 200  # the form answers (wrong password), not 429
    assert subscribe.status_code == 429
    assert not Subscriber.objects.exists()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_processes_share_one_budget(tmp_path):
    """Four real processes hit one bucket 10 times each against a limit of 12: exactly 12
    are let through in total (a per-process count would let through 48)."""
    from devkit.workers import test_database_url

    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=test_database_url(),
        PYTHONPATH=os.getcwd(),
    )
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HAMMER, str(go)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            cwd=os.getcwd(),
        )
        for _ in range(4)
    ]
    go.touch()
    allowed = [int(proc.communicate(timeout=60)[0].strip() or -1) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert sum(allowed) == 12


HAMMER = """
import sys, time
from pathlib import Path

import django

django.setup()
from breakglass.accounts.ratelimit import ratelimit_hit

while not Path(sys.argv[1]).exists():
    time.sleep(0.01)
print(sum(
    ratelimit_hit(scope="test", key="shared", limit=(12, 3600), fail_open=False) == 0
    for _ in range(10)
))
"""
