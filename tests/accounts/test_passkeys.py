"""Passkey rules without a browser: who may register, BREAKGLASS_PASSKEY_REQUIRED_ROLES at
the code steps, removal. The ceremonies themselves run in Chromium
(tests/browser/test_passkeys_browser.py)."""

from __future__ import annotations

import hashlib
import os

import pytest
from django_otp_webauthn.models import WebAuthnCredential

from breakglass.accounts import services
from breakglass.accounts.decorators import SUDO_SESSION_KEY
from breakglass.audit.models import AuditEvent
from devkit.factories import totp_now


def passkey_make(user, name: str = "YubiKey") -> WebAuthnCredential:
    """A stored credential row (its key material is never exercised here)."""
    credential_id = os.urandom(32)
    return WebAuthnCredential.objects.create(
        user=user,
        name=name,
        confirmed=True,
        credential_id=credential_id,
        credential_id_sha256=hashlib.sha256(credential_id).hexdigest(),
        public_key=b"\xa5" * 77,
        sign_count=0,
    )


@pytest.fixture
def required(settings):
    settings.BREAKGLASS_PASSKEY_REQUIRED_ROLES = ["approver"]


def test_registering_a_passkey_needs_a_fresh_code(approver, as_user):
    response = as_user(approver, sudo=False).post(
        "/accounts/passkeys/registration/begin/", content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "sudo_required"


def test_with_a_fresh_code_registration_starts_for_this_relying_party(approver, as_user, settings):
    settings.OTP_WEBAUTHN_RP_ID = "bg.example.test"
    response = as_user(approver).post(
        "/accounts/passkeys/registration/begin/", content_type="application/json"
    )
    assert response.status_code == 200
    options = response.json()
    assert options["rp"] == {"id": "bg.example.test", "name": "Breakglass"}
    assert options["user"]["name"] == approver.username


def test_a_first_passkey_needs_no_fresh_code_when_the_role_requires_one(
    approver, as_user, required
):
    client = as_user(approver, sudo=False)
    assert (
        client.post(
            "/accounts/passkeys/registration/begin/", content_type="application/json"
        ).status_code
        == 200
    )
    passkey_make(approver)
    # The second one does: from now on the passkey itself is the fresh code.
    assert (
        client.post(
            "/accounts/passkeys/registration/begin/", content_type="application/json"
        ).status_code
        == 403
    )


def test_a_password_session_cannot_start_any_passkey_ceremony_for_registration(
    password_client, approver
):
    response = password_client(approver).post(
        "/accounts/passkeys/registration/begin/", content_type="application/json"
    )
    assert response.status_code in (302, 403)
    assert not WebAuthnCredential.objects.exists()


def test_passwordless_login_is_off(client, db):
    response = client.post(
        "/accounts/passkeys/authentication/begin/", content_type="application/json"
    )
    assert response.status_code in (302, 401, 403)
    if response.status_code != 302:
        assert "options" not in response.json()


def test_a_code_does_not_give_the_fresh_code_step_when_the_role_requires_a_passkey(
    approver, as_user, required
):
    passkey_make(approver)
    client = as_user(approver, sudo=False)
    response = client.post(
        "/accounts/sudo/", {"otp_token": totp_now(approver), "next": "/accounts/"}
    )
    assert response.status_code == 200
    assert SUDO_SESSION_KEY not in client.session
    assert b"Your role requires a passkey here" in response.content
    event = AuditEvent.objects.filter(action="auth.sudo_failed").latest("seq")
    assert event.data == {"passkey_required": True}


def test_without_a_passkey_yet_the_sudo_page_says_to_register_one(approver, as_user, required):
    response = as_user(approver, sudo=False).get("/accounts/sudo/?next=/accounts/")
    assert b"Register a passkey or security key" in response.content
    assert b'name="otp_token"' not in response.content


def test_a_code_still_logs_in_before_the_first_passkey_but_unlocks_nothing(
    approver, password_client, required
):
    client = password_client(approver)
    response = client.post("/accounts/verify/", {"otp_token": totp_now(approver), "next": "/"})
    assert response.status_code == 302 and response.url == "/accounts/"
    assert SUDO_SESSION_KEY not in client.session


def test_once_a_passkey_exists_a_code_no_longer_logs_in_for_that_role(
    approver, password_client, required
):
    passkey_make(approver)
    client = password_client(approver)
    page = client.get("/accounts/verify/?next=/")
    assert b'id="passkey-verification-button"' in page.content
    assert b'name="otp_token"' not in page.content
    response = client.post("/accounts/verify/", {"otp_token": totp_now(approver), "next": "/"})
    assert response.status_code == 200
    assert client.get("/").status_code == 302


def test_other_roles_keep_codes_and_see_the_passkey_button_beside_them(
    responder, password_client, required
):
    passkey_make(responder)
    client = password_client(responder)
    page = client.get("/accounts/verify/?next=/")
    assert b'id="passkey-verification-button"' in page.content
    assert b'name="otp_token"' in page.content
    response = client.post("/accounts/verify/", {"otp_token": totp_now(responder), "next": "/"})
    assert response.status_code == 302 and response.url == "/"


def test_the_verify_page_loads_the_script_from_this_site_only(responder, password_client):
    passkey_make(responder)
    html = password_client(responder).get("/accounts/verify/").content.decode()
    assert '<script type="module" src="/static/django_otp_webauthn/otp_webauthn_auth.js">' in html
    assert '<script id="otp_webauthn_config" type="application/json">' in html
    assert "<script>" not in html and "http://" not in html.split("otp_webauthn_config")[0][-300:]


def test_the_account_page_lists_passkeys_and_removing_one_is_audited(responder, as_user):
    passkey = passkey_make(responder, name="Office key")
    client = as_user(responder)
    assert "Office key" in client.get("/accounts/").content.decode()
    response = client.post(f"/accounts/passkeys/{passkey.pk}/remove/")
    assert response.status_code == 302
    assert not WebAuthnCredential.objects.exists()
    assert AuditEvent.objects.filter(action="auth.passkey_removed", actor=responder).count() == 1


def test_the_last_passkey_of_a_role_that_requires_one_cannot_be_removed(approver, required):
    passkey = passkey_make(approver)
    with pytest.raises(services.AccountError, match="Register another one before removing"):
        services.passkey_remove(credential=passkey, actor=approver)
    assert WebAuthnCredential.objects.filter(pk=passkey.pk).exists()


def test_someone_elses_passkey_cannot_be_removed(responder, approver, as_user):
    passkey = passkey_make(approver)
    assert as_user(responder).post(f"/accounts/passkeys/{passkey.pk}/remove/").status_code == 404
    assert WebAuthnCredential.objects.filter(pk=passkey.pk).exists()


def test_enrolling_a_first_app_does_not_unlock_sensitive_actions_for_a_passkey_role(
    db, password_client, required
):
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from devkit.factories import user_make

    newcomer = user_make("nina-approver", role_names=("approver",), otp=False)
    client = password_client(newcomer)
    client.get("/accounts/enrol/")
    device = TOTPDevice.objects.get(user=newcomer, confirmed=False)
    code = f"{TOTP(device.bin_key, device.step, device.t0, device.digits).token():06d}"
    response = client.post("/accounts/enrol/", {"name": "phone", "otp_token": code})
    assert response.status_code == 302
    assert SUDO_SESSION_KEY not in client.session
