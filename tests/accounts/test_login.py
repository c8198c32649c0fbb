"""Password step: it leads to the OTP step, and failures back off per username."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from breakglass.accounts.models import LoginThrottle
from breakglass.accounts.services import login_backoff_seconds
from breakglass.audit.models import AuditEvent
from devkit.factories import user_make

PASSWORD = "correct horse battery"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def log_in(client, username, password=PASSWORD, next_url=None):
    data = {"username": username, "password": password}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/accounts/login/", data)


@pytest.fixture
def rita(db):
    return user_make("rita")


def test_a_correct_password_leads_to_the_otp_step_keeping_next(rita):
    response = log_in(Client(), "rita", next_url="/drills/")
    assert response.status_code == 302
    assert response.url == "/accounts/verify/?next=%2Fdrills%2F"


def test_a_password_alone_does_not_open_the_console(rita):
    client = Client()
    log_in(client, "rita")
    response = client.get("/")
    assert response.status_code == 302
    assert response.url.startswith("/accounts/verify/")


def test_next_pointing_to_another_site_is_ignored(rita):
    response = log_in(Client(), "rita", next_url="https://evil.example/")
    assert response.url == "/accounts/verify/?next=%2F"


def test_a_new_password_login_drops_an_earlier_second_factor(rita, as_user):
    client = as_user(rita)
    assert client.get("/").status_code == 200
    log_in(client, "rita")
    assert client.get("/").url.startswith("/accounts/verify/")


def test_a_wrong_password_says_so_and_is_audited(rita):
    response = log_in(Client(), "rita", password="wrong")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.data == {"username": "rita", "failures": 1, "wait_seconds": 0}


def test_a_successful_login_is_audited_and_clears_failures(rita):
    log_in(Client(), "rita", password="wrong")
    log_in(Client(), "rita")
    assert AuditEvent.objects.filter(action="auth.login", actor=rita).exists()
    assert not LoginThrottle.objects.exists()


def test_the_backoff_doubles_after_the_free_failures_and_is_capped(settings):
    settings.BREAKGLASS_LOGIN_FREE_FAILURES = 3
    settings.BREAKGLASS_LOGIN_BACKOFF_SECONDS = 2
    settings.BREAKGLASS_LOGIN_BACKOFF_MAX_SECONDS = 300
    assert [login_backoff_seconds(n) for n in range(1, 9)] == [0, 0, 0, 2, 4, 8, 16, 32]
    assert login_backoff_seconds(40) == 300
    assert login_backoff_seconds(10_000) == 300


def test_after_repeated_failures_even_the_right_password_waits_for_the_backoff(rita):
    client = Client()
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(4):  # three free failures, the fourth starts a 2-second wait
            log_in(client, "rita", password="wrong")
        response = log_in(client, "rita")
        assert response.status_code == 200
        assert "Too many failed log-ins for this account. Try again in 2 seconds." in (
            response.content.decode()
        )
        assert AuditEvent.objects.filter(action="auth.login_throttled").count() == 1

        clock.shift(timedelta(seconds=1))
        assert log_in(client, "rita").status_code == 200  # still waiting

        clock.shift(timedelta(seconds=1))
        response = log_in(client, "rita")
        assert response.status_code == 302
        assert response.url.startswith("/accounts/verify/")


def test_attempts_during_the_backoff_do_not_extend_it(rita):
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(4):
            log_in(Client(), "rita", password="wrong")
        for _ in range(5):
            log_in(Client(), "rita", password="wrong")
        assert LoginThrottle.objects.get(username="rita").failures == 4
        clock.shift(timedelta(seconds=2))
        assert log_in(Client(), "rita").status_code == 302


def test_unknown_usernames_back_off_the_same_way(db):
    with time_machine.travel(START, tick=False):
        for _ in range(4):
            log_in(Client(), "nobody", password="wrong")
        response = log_in(Client(), "nobody", password="wrong")
    assert "Too many failed log-ins" in response.content.decode()


def test_the_throttle_ignores_case_in_the_username(rita):
    with time_machine.travel(START, tick=False):
        for name in ("rita", "RITA", "Rita", "rItA"):
            log_in(Client(), name, password="wrong")
        response = log_in(Client(), "rita")
    assert "Too many failed log-ins" in response.content.decode()


def test_failures_from_yesterday_are_forgotten(rita):
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(3):
            log_in(Client(), "rita", password="wrong")
        clock.shift(timedelta(days=2))
        log_in(Client(), "rita", password="wrong")
        assert LoginThrottle.objects.get(username="rita").failures == 1


def test_the_login_page_works_without_a_session(db):
    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content
