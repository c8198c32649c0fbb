"""The OTP step: authenticator codes, backup codes, and their back-off."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django_otp.plugins.otp_static.models import StaticToken

from breakglass.accounts.services import backup_codes_generate
from breakglass.audit.models import AuditEvent
from devkit.factories import totp_now, user_make

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def rita(db):
    return user_make("rita")


def verify(client, code, next_url="/"):
    return client.post("/accounts/verify/", {"otp_token": code, "next": next_url})


def test_a_current_code_verifies_the_session_and_follows_next(rita, password_client):
    client = password_client(rita)
    response = verify(client, totp_now(rita), next_url="/drills/")
    assert response.status_code == 302
    assert response.url == "/drills/"
    assert client.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="auth.otp_verified", actor=rita).exists()


def test_a_wrong_code_shows_a_clear_error_and_is_audited(rita, password_client):
    client = password_client(rita)
    response = verify(client, "000000" if totp_now(rita) != "000000" else "111111")
    assert response.status_code == 200
    assert "That code is not valid" in response.content.decode()
    assert AuditEvent.objects.get(action="auth.otp_failed").data == {"throttled": False}
    assert client.get("/").status_code == 302


def test_an_empty_code_is_refused_with_a_message(rita, password_client):
    response = password_client(rita).post("/accounts/verify/", {"otp_token": ""})
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()


def test_next_pointing_to_another_site_is_ignored(rita, password_client):
    evils = ("https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:x")
    for minutes, evil in enumerate(evils):
        client = password_client(rita)
        # A later TOTP step each time: a code is never accepted twice.
        with time_machine.travel(START + timedelta(minutes=minutes), tick=False):
            response = verify(client, totp_now(rita), next_url=evil)
        assert response.url == "/", evil


def test_a_code_cannot_be_used_twice(rita, password_client):
    with time_machine.travel(START, tick=False):
        code = totp_now(rita)
        assert verify(password_client(rita), code).status_code == 302
        assert verify(password_client(rita), code).status_code == 200


def test_a_code_used_a_second_time_is_called_used_not_a_clock_problem(rita, password_client):
    with time_machine.travel(START, tick=False) as clock:
        code = totp_now(rita)
        assert verify(password_client(rita), code).status_code == 302
        clock.shift(timedelta(seconds=20))  # the same code is still on the phone
        page = verify(password_client(rita), code).content.decode()
    assert "That code was already used; wait for the next one" in page
    assert "clock" not in page
    assert AuditEvent.objects.filter(action="auth.otp_failed").last().data == {
        "throttled": False,
        "reused": True,
    }


def test_the_previous_steps_used_code_is_called_used_too(rita, password_client):
    """Within the tolerated drift the code of the step before is still recognised."""
    with time_machine.travel(START, tick=False) as clock:
        code = totp_now(rita)
        assert verify(password_client(rita), code).status_code == 302
        clock.shift(timedelta(seconds=35))  # the next step: a new code on the phone
        page = verify(password_client(rita), code).content.decode()
        assert "That code was already used" in page
        clock.shift(timedelta(seconds=2))  # past the 1 s back-off of that refusal
        assert verify(password_client(rita), totp_now(rita)).status_code == 302


def test_a_wrong_code_after_a_used_one_is_still_just_not_valid(rita, password_client):
    with time_machine.travel(START, tick=False):
        code = totp_now(rita)
        assert verify(password_client(rita), code).status_code == 302
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        page = verify(password_client(rita), wrong).content.decode()
    assert "That code is not valid" in page and "already used" not in page


def test_after_wrong_codes_even_the_right_code_waits_for_the_backoff(rita, password_client):
    client = password_client(rita)
    with time_machine.travel(START, tick=False) as clock:
        wrong = f"{(int(totp_now(rita)) + 1) % 1_000_000:06d}"
        verify(client, wrong)  # 1 failure: 1 s wait
        clock.shift(timedelta(seconds=1))
        verify(client, wrong)  # 2 failures: 2 s wait
        clock.shift(timedelta(seconds=2))
        verify(client, wrong)  # 3 failures: 4 s wait

        clock.shift(timedelta(seconds=2))
        response = verify(client, totp_now(rita))
        assert response.status_code == 200
        assert "Too many wrong codes. Try again in 2 seconds" in response.content.decode()
        assert AuditEvent.objects.filter(action="auth.otp_failed").last().data == {
            "throttled": True
        }

        clock.shift(timedelta(seconds=2))
        response = verify(client, totp_now(rita))
        assert response.status_code == 302
        assert client.get("/").status_code == 200


def test_a_backup_code_verifies_once(rita, password_client):
    codes = backup_codes_generate(user=rita)
    assert verify(password_client(rita), codes[0].upper()).status_code == 302
    response = verify(password_client(rita), codes[0])
    assert "That code is not valid" in response.content.decode()
    assert StaticToken.objects.filter(device__user=rita).count() == 9


def test_backup_codes_accept_spaces_and_dashes(rita, password_client):
    code = backup_codes_generate(user=rita)[0]
    assert verify(password_client(rita), f" {code[:4]}-{code[4:]} ").status_code == 302


def test_wrong_backup_codes_back_off_too(rita, password_client):
    codes = backup_codes_generate(user=rita)
    client = password_client(rita)
    with time_machine.travel(START, tick=False) as clock:
        verify(client, "aaaaaaaa")
        response = verify(client, codes[0])
        assert "Too many wrong codes" in response.content.decode()
        clock.shift(timedelta(seconds=1))
        assert verify(client, codes[0]).status_code == 302


def test_a_wrong_app_code_does_not_lock_the_backup_codes(rita, password_client):
    codes = backup_codes_generate(user=rita)
    client = password_client(rita)
    with time_machine.travel(START, tick=False):
        verify(client, f"{(int(totp_now(rita)) + 1) % 1_000_000:06d}")
        assert verify(client, codes[0]).status_code == 302


def test_using_a_backup_code_warns_when_few_are_left(rita, password_client):
    codes = backup_codes_generate(user=rita)
    for code in codes[:6]:
        verify(password_client(rita), code)
    client = password_client(rita)
    verify(client, codes[6])
    page = client.get("/").content.decode()
    assert "You used a backup code; 3 left" in page


def test_a_user_without_any_device_is_sent_to_enrolment(db, password_client):
    newcomer = user_make("nina", otp=False)
    response = password_client(newcomer).get("/accounts/verify/?next=/comms/")
    assert response.status_code == 302
    assert response.url == "/accounts/enrol/?next=%2Fcomms%2F"


def test_an_anonymous_visitor_is_sent_to_the_password_step(db, client):
    response = client.get("/accounts/verify/")
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


def test_the_session_id_changes_when_the_code_is_accepted(rita, password_client):
    client = password_client(rita)
    before = client.session.session_key
    verify(client, totp_now(rita))
    assert client.session.session_key != before
    assert client.get("/").status_code == 200


def test_an_already_verified_session_skips_the_code_step(rita, as_user):
    response = as_user(rita).get("/accounts/verify/?next=/comms/")
    assert response.status_code == 302 and response.url == "/comms/"
