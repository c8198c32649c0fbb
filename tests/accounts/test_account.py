"""The account page: devices, backup codes left, and the sudo-guarded actions on them."""

import re

import pytest
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from breakglass.accounts.services import backup_codes_generate
from breakglass.audit.models import AuditEvent
from devkit.factories import backup_code_digests, user_make


@pytest.fixture
def rita(db):
    return user_make("rita", role_names=("responder",))


def test_the_account_page_lists_devices_roles_and_backup_codes_left(rita, as_user):
    backup_codes_generate(user=rita)
    page = as_user(rita).get("/accounts/").content.decode()
    assert "phone" in page and "this session" in page
    assert "10 left" in page
    assert "responder" in page


def test_the_account_page_needs_a_verified_session(rita, password_client):
    response = password_client(rita).get("/accounts/")
    assert response.status_code == 302 and response.url.startswith("/accounts/verify/")


def test_regenerating_backup_codes_needs_a_fresh_code(rita, as_user):
    response = as_user(rita, sudo=False).post("/accounts/backup-codes/new/")
    assert response.status_code == 302
    assert response.url == "/accounts/sudo/?next=%2Faccounts%2Fbackup-codes%2Fnew%2F"


def test_after_sudo_regenerating_asks_for_confirmation_first(rita, as_user):
    old = backup_codes_generate(user=rita)
    response = as_user(rita).get("/accounts/backup-codes/new/")
    assert response.status_code == 200
    assert "stops every current one from working" in response.content.decode()
    assert set(StaticToken.objects.values_list("token", flat=True)) == backup_code_digests(
        rita, old
    )


def test_regenerating_replaces_every_backup_code_and_is_audited(rita, as_user):
    old = backup_codes_generate(user=rita)
    client = as_user(rita)
    response = client.post("/accounts/backup-codes/new/")
    assert response.status_code == 302 and response.url == "/accounts/backup-codes/"
    shown = re.findall(r"<code>([a-z2-7]{8})</code>", client.get(response.url).content.decode())
    stored = set(StaticToken.objects.filter(device__user=rita).values_list("token", flat=True))
    assert backup_code_digests(rita, shown) == stored and len(stored) == 10
    assert not stored & backup_code_digests(rita, old)
    assert AuditEvent.objects.filter(action="auth.backup_codes_generated").count() == 2


def test_the_only_authenticator_cannot_be_removed(rita, as_user):
    device = TOTPDevice.objects.get(user=rita)
    client = as_user(rita)
    response = client.post(f"/accounts/devices/{device.pk}/remove/", follow=True)
    assert "This is your only authenticator app" in response.content.decode()
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


def test_a_second_authenticator_can_be_removed_with_a_fresh_code(rita, as_user):
    spare = TOTPDevice.objects.create(user=rita, name="old tablet", confirmed=True)
    client = as_user(rita)
    assert client.get(f"/accounts/devices/{spare.pk}/remove/").status_code == 200  # confirm
    response = client.post(f"/accounts/devices/{spare.pk}/remove/")
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(pk=spare.pk).exists()
    event = AuditEvent.objects.get(action="auth.totp_removed")
    assert event.data == {"name": "old tablet"}


def test_nobody_can_remove_someone_elses_device(rita, as_user, db):
    other = user_make("oscar")
    device = TOTPDevice.objects.get(user=other)
    response = as_user(rita).post(f"/accounts/devices/{device.pk}/remove/")
    assert response.status_code == 404
    assert TOTPDevice.objects.filter(pk=device.pk).exists()
