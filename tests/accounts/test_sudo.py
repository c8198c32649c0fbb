"""Sudo: the most sensitive actions need an OTP entered within BREAKGLASS_SUDO_SECONDS."""

import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.http import HttpResponse
from django.test import RequestFactory

from breakglass.accounts.decorators import SUDO_SESSION_KEY, sudo_is_fresh, sudo_required
from breakglass.audit.models import AuditEvent
from devkit.factories import totp_now, user_make

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
GUARDED = "/accounts/backup-codes/new/"


@pytest.fixture
def rita(db):
    return user_make("rita")


def sudo(client, code, next_url=GUARDED):
    return client.post("/accounts/sudo/", {"otp_token": code, "next": next_url})


def test_a_stale_session_is_sent_to_the_sudo_page_with_next(rita, as_user):
    response = as_user(rita, sudo=False).get(GUARDED)
    assert response.status_code == 302
    assert response.url == "/accounts/sudo/?next=%2Faccounts%2Fbackup-codes%2Fnew%2F"


def test_next_keeps_its_query_string_intact():
    request = RequestFactory().get("/x/", {"a": "1", "b": "2"})
    request.user = type("U", (), {"is_authenticated": True, "is_verified": lambda self: True})()
    request.session = {}
    response = sudo_required(lambda r: HttpResponse("ok"))(request)
    assert response.url == "/accounts/sudo/?next=%2Fx%2F%3Fa%3D1%26b%3D2"


def test_a_fresh_code_unlocks_sensitive_actions_for_the_configured_time(rita, as_user, settings):
    settings.BREAKGLASS_SUDO_SECONDS = 120
    with time_machine.travel(START, tick=False) as clock:
        client = as_user(rita, sudo=False)
        response = sudo(client, totp_now(rita))
        assert response.status_code == 302 and response.url == GUARDED
        assert AuditEvent.objects.filter(action="auth.sudo", actor=rita).exists()

        clock.shift(timedelta(seconds=119))
        assert client.get(GUARDED).status_code == 200

        clock.shift(timedelta(seconds=2))
        response = client.get(GUARDED)
        assert response.status_code == 302 and response.url.startswith("/accounts/sudo/")


def test_a_wrong_code_keeps_it_locked_and_is_audited(rita, as_user):
    client = as_user(rita, sudo=False)
    wrong = f"{(int(totp_now(rita)) + 1) % 1_000_000:06d}"
    response = sudo(client, wrong)
    assert response.status_code == 200
    assert "That code is not valid" in response.content.decode()
    assert AuditEvent.objects.filter(action="auth.sudo_failed").exists()
    assert client.get(GUARDED).status_code == 302


def test_sudo_does_not_follow_next_to_another_site(rita, as_user):
    response = sudo(as_user(rita, sudo=False), totp_now(rita), next_url="https://evil.example/")
    assert response.url == "/"


def test_the_sudo_page_itself_needs_a_verified_session(rita, password_client):
    response = password_client(rita).get("/accounts/sudo/")
    assert response.status_code == 302 and response.url.startswith("/accounts/verify/")


def test_a_recent_stamp_without_an_otp_verified_user_is_not_fresh():
    request = RequestFactory().get("/")
    request.user = type("U", (), {"is_authenticated": True, "is_verified": lambda self: False})()
    request.session = {SUDO_SESSION_KEY: time.time()}
    assert sudo_is_fresh(request) is False
