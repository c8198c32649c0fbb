"""Logging in as a person does it, in a real browser: password, then a one-time code;
first-time enrolment with the QR page and backup codes; refusals that say why."""

from base64 import b32decode

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from devkit.factories import user_make
from tests.browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


@pytest.fixture
def csp_violations(page):
    """Console messages about the Content-Security-Policy: there must be none."""
    violations = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text)
            if "Content Security Policy" in message.text
            or "Content-Security-Policy" in message.text
            else None
        ),
    )
    return violations


def submit_password(page, base_url, username):
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_password_and_code_open_the_console(page, live_server, csp_violations):
    rita = user_make("rita-responder", role_names=("responder",), first_name="Rita")
    log_in(page, live_server.url, rita)
    assert page.url == f"{live_server.url}/"
    assert page.locator("h1").inner_text() == "Overview"
    nav = page.locator("nav.areas").inner_text()
    for area in ("Access", "Drills", "Comms"):
        assert area in nav
    assert "Audit" not in nav  # a responder would be refused there (navigation follows the role)
    assert "Responder" in page.locator(".lede").inner_text()
    assert csp_violations == []


def test_a_password_alone_is_sent_to_the_code_step(page, live_server):
    user_make("rita-responder")
    submit_password(page, live_server.url, "rita-responder")
    page.wait_for_url("**/accounts/verify/**")
    for path in ("/", "/access/", "/admin/", "/accounts/"):
        page.goto(f"{live_server.url}{path}")
        assert "/accounts/verify/" in page.url, path
        assert page.locator("h1").inner_text() == "One-time code"


def test_wrong_credentials_say_what_went_wrong(page, live_server):
    rita = user_make("rita-responder")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "rita-responder")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert "Please enter a correct username and password" in page.locator(".alert").inner_text()

    submit_password(page, live_server.url, "rita-responder")
    page.wait_for_url("**/accounts/verify/**")
    device = TOTPDevice.objects.get(user=rita)
    right = TOTP(device.bin_key).token()
    page.fill("input[name=otp_token]", f"{(right + 1) % 1_000_000:06d}")
    page.click("button[type=submit]")
    assert "That code is not valid" in page.locator(".alert").inner_text()
    assert "/accounts/verify/" in page.url


def test_a_new_user_enrols_an_app_then_logs_in_with_a_backup_code(
    page, live_server, csp_violations
):
    user_make("nina-new", otp=False)
    submit_password(page, live_server.url, "nina-new")
    page.wait_for_url("**/accounts/enrol/**")
    assert page.locator("figure.qr svg").count() == 1
    assert page.locator("figure.qr svg").bounding_box()["width"] > 100  # sized by console.css

    secret = page.locator("#totp-secret").get_attribute("data-secret")
    page.fill("input[name=name]", "test phone")
    page.fill("input[name=otp_token]", f"{TOTP(b32decode(secret)).token():06d}")
    page.click("button[type=submit]")

    page.wait_for_url("**/accounts/backup-codes/**")
    codes = page.locator("ol.backup-codes code").all_inner_texts()
    assert len(codes) == 10
    page.click("text=I have saved them, continue")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("h1").inner_text() == "Overview"

    page.click("button:has-text('Log out')")
    page.wait_for_url("**/accounts/login/**")
    submit_password(page, live_server.url, "nina-new")
    page.wait_for_url("**/accounts/verify/**")
    page.fill("input[name=otp_token]", codes[0])
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("h1").inner_text() == "Overview"

    page.goto(f"{live_server.url}/accounts/")
    assert "9 left" in page.locator("main").inner_text()
    assert "test phone" in page.locator("#app-table").inner_text()
    assert csp_violations == []
