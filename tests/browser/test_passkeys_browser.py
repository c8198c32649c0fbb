"""Passkeys in real Chromium with a virtual authenticator (DevTools protocol, WebAuthn
domain): registration from the account page, login, the fresh-code step, and a ceremony on
an origin the server does not allow, refused."""

from __future__ import annotations

import logging
import os

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django_otp_webauthn.models import WebAuthnCredential

from breakglass.accounts.decorators import SUDO_SESSION_KEY
from breakglass.audit.models import AuditEvent
from devkit.factories import user_make
from tests.browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


@pytest.fixture
def relying_party(settings, live_server):
    assert live_server.url.startswith("http://localhost:"), live_server.url
    settings.OTP_WEBAUTHN_RP_ID = "localhost"
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    return settings


@pytest.fixture
def authenticator(page):
    """A platform authenticator with a resident key and user verification, answering at once."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    result = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    yield cdp, result["authenticatorId"]
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": result["authenticatorId"]})


@pytest.fixture
def csp_violations(page):
    found = []
    page.on(
        "console",
        lambda m: found.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return found


@pytest.fixture
def alex(db):
    return user_make("alex-approver", role_names=("approver",), first_name="Alex")


def register_passkey(page, base_url) -> None:
    page.goto(f"{base_url}/accounts/")
    page.click("#passkey-register-button")
    # passkeys.js reloads the page once the library reports success.
    page.locator("#passkey-table").get_by_role("button", name="Remove").wait_for()


def log_out_and_enter_password(page, base_url, user) -> None:
    page.context.clear_cookies()
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/verify/**")


def expire_sudo(page) -> None:
    [cookie] = [c for c in page.context.cookies() if c["name"] == "sessionid"]
    session = SessionStore(session_key=cookie["value"])
    session.pop(SUDO_SESSION_KEY, None)
    session.save()


def test_a_passkey_is_registered_from_the_account_page_and_logs_in(
    page, live_server, relying_party, authenticator, alex, csp_violations
):
    log_in(page, live_server.url, alex)
    register_passkey(page, live_server.url)
    [credential] = WebAuthnCredential.objects.filter(user=alex)
    assert credential.confirmed
    assert credential.name.startswith("Passkey 1 (added ")
    assert credential.name in page.locator("#passkey-table").inner_text()
    shots = os.environ.get("BREAKGLASS_SCREENSHOT_DIR")  # set it to look at the pages
    if shots:
        page.screenshot(path=f"{shots}/passkey-account.png", full_page=True)
    assert AuditEvent.objects.filter(action="auth.passkey_registered", actor=alex).count() == 1

    log_out_and_enter_password(page, live_server.url, alex)
    assert page.is_visible("#passkey-verification-button")
    if shots:
        page.screenshot(path=f"{shots}/passkey-verify.png", full_page=True)
    page.click("#passkey-verification-button")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("h1").inner_text() == "Overview"
    assert AuditEvent.objects.filter(action="auth.passkey_verified", actor=alex).count() == 1
    assert csp_violations == []


def test_a_passkey_gives_the_fresh_code_for_sensitive_actions_when_the_role_requires_it(
    page, live_server, relying_party, authenticator, alex, settings
):
    settings.BREAKGLASS_PASSKEY_REQUIRED_ROLES = ["approver"]
    # Before any passkey exists a code still logs in, but only to register one.
    log_in(page, live_server.url, alex)
    assert page.url.startswith(f"{live_server.url}/accounts/")
    assert "Your role requires a passkey" in page.inner_text("main")
    register_passkey(page, live_server.url)

    expire_sudo(page)
    page.goto(f"{live_server.url}/accounts/backup-codes/new/")
    page.wait_for_url("**/accounts/sudo/**")
    # Codes are not offered for this role: only the passkey.
    assert page.locator("input[name=otp_token]").count() == 0
    page.click("#passkey-verification-button")
    page.wait_for_url("**/accounts/backup-codes/new/")
    assert page.locator("h1").inner_text() == "New backup codes"
    assert AuditEvent.objects.filter(action="auth.passkey_verified", actor=alex).count() == 1


def test_a_ceremony_on_an_origin_the_server_does_not_allow_is_refused(
    page, live_server, relying_party, authenticator, alex, settings, caplog
):
    caplog.set_level(logging.WARNING)
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = ["https://breakglass.example.test"]
    log_in(page, live_server.url, alex)
    page.goto(f"{live_server.url}/accounts/")
    page.click("#passkey-register-button")
    # (Locators, not wait_for_function: the page's CSP rightly forbids evaluating strings.)
    page.locator("#passkey-register-status-message", has_text="failed").wait_for()
    assert not WebAuthnCredential.objects.filter(user=alex).exists()
    refusals = [r for r in caplog.records if r.name == "breakglass.passkeys"]
    assert len(refusals) == 1
    assert "RegisterComplete refused for alex-approver" in refusals[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)


def test_a_passkey_login_from_a_wrong_origin_does_not_verify_the_session(
    page, live_server, relying_party, authenticator, alex, settings
):
    log_in(page, live_server.url, alex)
    register_passkey(page, live_server.url)
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = ["https://breakglass.example.test"]
    log_out_and_enter_password(page, live_server.url, alex)
    page.click("#passkey-verification-button")
    page.locator(
        "#passkey-verification-status-message", has_text="Invalid authentication response"
    ).wait_for()
    page.goto(f"{live_server.url}/")
    assert "/accounts/verify/" in page.url
    assert not AuditEvent.objects.filter(action="auth.passkey_verified").exists()
