"""TOTP enrolment: QR code and key on the page, a first code confirms, backup codes once."""

import re
from base64 import b32decode

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from breakglass.accounts.services import backup_codes_generate
from breakglass.audit.models import AuditEvent
from devkit.factories import backup_code_digests, user_make


def secret_on(page: str) -> str:
    return re.search(r'data-secret="([A-Z2-7]+)"', page).group(1)


def code_for(secret: str) -> str:
    return f"{TOTP(b32decode(secret)).token():06d}"


@pytest.fixture
def nina(db):
    """A new user with a password and no device yet."""
    return user_make("nina", otp=False)


def test_the_enrolment_page_shows_an_inline_svg_qr_code_without_inline_styles(
    nina, password_client
):
    page = password_client(nina).get("/accounts/enrol/").content.decode()
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    assert 'class="qrcode"' in svg and "<path" in svg
    assert "style" not in svg.lower()
    assert "<img" not in page


def test_the_key_is_shown_for_manual_entry_in_groups_of_four(nina, password_client):
    page = password_client(nina).get("/accounts/enrol/").content.decode()
    secret = secret_on(page)
    device = TOTPDevice.objects.get(user=nina, confirmed=False)
    assert b32decode(secret) == device.bin_key
    assert " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)) in page


def test_reloading_the_page_keeps_the_same_key(nina, password_client):
    client = password_client(nina)
    first = secret_on(client.get("/accounts/enrol/").content.decode())
    assert secret_on(client.get("/accounts/enrol/").content.decode()) == first
    assert TOTPDevice.objects.filter(user=nina).count() == 1


def test_a_correct_code_confirms_the_device_and_shows_backup_codes_once(nina, password_client):
    client = password_client(nina)
    secret = secret_on(client.get("/accounts/enrol/?next=/comms/").content.decode())
    response = client.post(
        "/accounts/enrol/", {"otp_token": code_for(secret), "name": "work phone", "next": "/comms/"}
    )
    assert response.status_code == 302
    assert response.url == "/accounts/backup-codes/?next=%2Fcomms%2F"

    device = TOTPDevice.objects.get(user=nina)
    assert device.confirmed and device.name == "work phone"

    page = client.get(response.url).content.decode()
    shown = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", page)
    stored = set(StaticToken.objects.filter(device__user=nina).values_list("token", flat=True))
    assert len(shown) == 10 and backup_code_digests(nina, shown) == stored
    assert not stored & set(shown)  # the codes themselves are not in the database
    assert 'href="/comms/"' in page

    again = client.get("/accounts/backup-codes/")
    assert again.status_code == 302 and again.url == "/accounts/"

    # The enrolment also completed the OTP step for this session.
    assert client.get("/").status_code == 200
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert "auth.totp_enrolled" in actions and "auth.backup_codes_generated" in actions


def test_a_wrong_code_is_refused_with_a_clear_error(nina, password_client):
    client = password_client(nina)
    secret = secret_on(client.get("/accounts/enrol/").content.decode())
    wrong = f"{(int(code_for(secret)) + 1) % 1_000_000:06d}"
    response = client.post("/accounts/enrol/", {"otp_token": wrong})
    assert response.status_code == 200
    assert "That code does not match" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=nina, confirmed=True).exists()
    assert AuditEvent.objects.filter(action="auth.totp_enrol_failed").exists()


def test_a_password_alone_cannot_add_a_device_to_an_account_that_has_one(db, password_client):
    rita = user_make("rita")
    response = password_client(rita).get("/accounts/enrol/")
    assert response.status_code == 302
    assert response.url.startswith("/accounts/verify/")
    assert not TOTPDevice.objects.filter(user=rita, confirmed=False).exists()


def test_adding_a_second_device_needs_a_fresh_code(db, as_user):
    rita = user_make("rita")
    response = as_user(rita, sudo=False).get("/accounts/enrol/")
    assert response.status_code == 302
    assert response.url == "/accounts/sudo/?next=%2Faccounts%2Fenrol%2F"


def test_a_second_device_keeps_the_existing_backup_codes(db, as_user):
    rita = user_make("rita")
    codes = backup_codes_generate(user=rita)
    client = as_user(rita)
    secret = secret_on(client.get("/accounts/enrol/").content.decode())
    response = client.post("/accounts/enrol/", {"otp_token": code_for(secret), "name": "tablet"})
    assert response.status_code == 302 and response.url == "/accounts/"
    assert TOTPDevice.objects.filter(user=rita, confirmed=True).count() == 2
    remaining = set(StaticToken.objects.filter(device__user=rita).values_list("token", flat=True))
    assert remaining == backup_code_digests(rita, codes)


def test_anonymous_visitors_are_sent_to_log_in(db, client):
    response = client.get("/accounts/enrol/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")
