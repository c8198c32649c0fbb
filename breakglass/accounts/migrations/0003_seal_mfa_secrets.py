"""Encrypt existing TOTP keys under the KEK and replace stored backup codes with keyed
digests (see breakglass/accounts/mfa_secrets.py). Rows already sealed are left alone, so
running it twice is harmless. Irreversible on purpose: unsealing would write every
second factor back in clear."""

from django.db import migrations


def seal(apps, schema_editor):
    from breakglass.accounts.mfa_secrets import (
        backup_code_digest,
        backup_code_is_digest,
        totp_key_is_sealed,
        totp_key_seal,
    )

    TOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    StaticToken = apps.get_model("otp_static", "StaticToken")
    for device in TOTPDevice.objects.all().iterator():
        if device.key and not totp_key_is_sealed(device.key):
            sealed = totp_key_seal(key_hex=device.key, user_id=device.user_id)
            TOTPDevice.objects.filter(pk=device.pk).update(key=sealed)
    for token in StaticToken.objects.all().iterator():
        if token.token and not backup_code_is_digest(token.token):
            digest = backup_code_digest(device_id=token.device_id, code=token.token)
            StaticToken.objects.filter(pk=token.pk).update(token=digest)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_rate_limit_counters"),
        ("otp_totp", "0003_add_timestamps"),
        ("otp_static", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(seal, migrations.RunPython.noop)]
