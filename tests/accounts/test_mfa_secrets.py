"""MFA secrets at rest: a copy of the database holds no usable second factor."""

import importlib
from base64 import b32encode

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from breakglass.accounts.services import backup_codes_generate, otp_check
from breakglass.keys.crypto import SecretError
from devkit.factories import _TEST_KEY, totp_now, user_make
from tests.accounts.test_enrol import code_for, secret_on

pytestmark = pytest.mark.django_db


def _stored(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


@pytest.fixture
def rita():
    return user_make("rita")


def test_a_totp_key_is_stored_encrypted_and_still_gives_codes(rita):
    device = TOTPDevice.objects.get(user=rita)
    stored = _stored("otp_totp_totpdevice", "key", device.pk)
    assert stored.startswith("QkdL") and _TEST_KEY not in stored
    assert len(stored) <= 80
    assert otp_check(user=rita, token=totp_now(rita), purpose="verify").ok


def test_the_stored_key_is_useless_without_the_kek(rita, settings):
    device = TOTPDevice.objects.get(user=rita)
    settings.BREAKGLASS_KEK = "another-key-encryption-key-entirely-0123456789"
    with pytest.raises(SecretError, match="different BREAKGLASS_KEK"):
        device.bin_key  # noqa: B018


def test_a_key_copied_onto_another_users_device_does_not_decrypt(rita):
    mallory = user_make("mallory")
    ritas = _stored("otp_totp_totpdevice", "key", TOTPDevice.objects.get(user=rita).pk)
    TOTPDevice.objects.filter(user=mallory).update(key=ritas)
    with pytest.raises(SecretError, match="integrity check"):
        TOTPDevice.objects.get(user=mallory).bin_key  # noqa: B018


def test_backup_codes_are_stored_as_keyed_digests_and_work_once(rita):
    codes = backup_codes_generate(user=rita)
    stored = set(StaticToken.objects.values_list("token", flat=True))
    assert not stored & set(codes)
    assert all(len(token) == 16 for token in stored)
    assert otp_check(user=rita, token=codes[0], purpose="verify").ok
    assert not otp_check(user=rita, token=codes[0], purpose="verify").ok


def test_an_enrolled_secret_is_never_shown_again(db, as_user):
    nina = user_make("nina", otp=False)
    client = as_user(nina)
    client.force_login(nina)
    first = secret_on(client.get("/accounts/enrol/").content.decode())
    client.post("/accounts/enrol/", {"otp_token": code_for(first), "name": "phone"})
    device = TOTPDevice.objects.get(user=nina, confirmed=True)
    assert b32encode(device.bin_key).decode() == first
    for url in ("/accounts/", "/accounts/enrol/", "/"):
        assert first not in client.get(url, follow=True).content.decode(), url


def test_the_migration_seals_secrets_written_before_it(rita):
    device = TOTPDevice.objects.get(user=rita)
    static = rita.staticdevice_set.create(name="backup codes", confirmed=True)
    # Rows as an older release wrote them (update() skips the save hooks).
    TOTPDevice.objects.filter(pk=device.pk).update(key=_TEST_KEY)
    token = StaticToken.objects.create(device=static, token="placeholder")
    StaticToken.objects.filter(pk=token.pk).update(token="abcdefgh")

    migration = importlib.import_module("breakglass.accounts.migrations.0003_seal_mfa_secrets")
    migration.seal(django_apps, None)
    migration.seal(django_apps, None)  # a second run changes nothing

    assert _stored("otp_totp_totpdevice", "key", device.pk).startswith("QkdL")
    assert otp_check(user=rita, token=totp_now(rita), purpose="verify").ok
    assert _stored("otp_static_statictoken", "token", token.pk) != "abcdefgh"
    assert otp_check(user=rita, token="abcdefgh", purpose="verify").ok
