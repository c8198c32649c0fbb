"""MFA secrets at rest: TOTP keys encrypted under the KEK, backup codes kept only as
keyed digests. A copy of the database (a backup, a replica, the database owner) then
holds no second factor: without `BREAKGLASS_KEK` it can neither compute anyone's codes
nor test backup-code guesses offline.

django-otp stores `TOTPDevice.key` as hex and `StaticToken.token` as the code itself.
Rather than fork its models, two small hooks sit underneath them:

- `TOTPDevice.key` holds `"QkdL..."`: the urlsafe base64 of a `secret_encrypt`
  envelope (magic `BGK1`, hence the prefix) of the raw key, bound to the device's user.
  A 20-byte key (django-otp's default and ours) seals to exactly 80 characters, the
  column's width. `bin_key`, which django-otp uses to compute codes and the enrolment
  QR code, decrypts it. A hex key written by anyone (django-otp's default on create, a
  fixture, an old row) is sealed by the pre_save hook before it reaches the database.
- `StaticToken.token` holds the first 16 hex digits of `secret_digest(code)`, bound to
  the device. `backup_code_digest` turns a typed code into that form before
  `StaticDevice.verify_token` looks it up (accounts.services.otp_check).

Migration `accounts.0003_seal_mfa_secrets` converts rows written before this existed.
"""

from __future__ import annotations

import base64
import re
from binascii import unhexlify

from django.db.models.signals import pre_save
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from breakglass.keys.crypto import secret_decrypt, secret_digest, secret_encrypt

SEALED_PREFIX = "QkdL"  # base64 of "BGK", the start of the envelope magic b"BGK1"
_DIGEST = re.compile(r"^[0-9a-f]{16}$")


def _totp_context(user_id: int) -> str:
    return f"totp-device:user:{user_id}"


def totp_key_is_sealed(key: str) -> bool:
    return key.startswith(SEALED_PREFIX)


def totp_key_seal(*, key_hex: str, user_id: int) -> str:
    blob = secret_encrypt(unhexlify(key_hex.encode()), context=_totp_context(user_id))
    sealed = base64.urlsafe_b64encode(blob).decode().rstrip("=")
    if len(sealed) > TOTPDevice._meta.get_field("key").max_length:
        raise ValueError("TOTP keys longer than 20 bytes do not fit sealed in the key column")
    return sealed


def totp_key_bytes(device: TOTPDevice) -> bytes:
    """The raw TOTP key (replaces django-otp's `TOTPDevice.bin_key`)."""
    key = device.key
    if not totp_key_is_sealed(key):
        return unhexlify(key.encode())
    blob = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    return secret_decrypt(blob, context=_totp_context(device.user_id))


def backup_code_digest(*, device_id: int, code: str) -> str:
    """What `StaticToken.token` stores for a backup code (16 hex digits)."""
    return secret_digest(code.encode(), context=f"backup-code:device:{device_id}")[:16]


def backup_code_is_digest(token: str) -> bool:
    # Codes themselves are 8 base32 letters (StaticToken.random_token); never 16 hex.
    return bool(_DIGEST.match(token))


def _seal_totp_key(sender, instance: TOTPDevice, **kwargs) -> None:
    if instance.key and not totp_key_is_sealed(instance.key):
        instance.key = totp_key_seal(key_hex=instance.key, user_id=instance.user_id)


def _digest_backup_code(sender, instance: StaticToken, **kwargs) -> None:
    if instance.token and not backup_code_is_digest(instance.token):
        instance.token = backup_code_digest(device_id=instance.device_id, code=instance.token)


def mfa_secrets_connect() -> None:
    TOTPDevice.bin_key = property(totp_key_bytes)
    pre_save.connect(_seal_totp_key, sender=TOTPDevice, dispatch_uid="breakglass.totp_seal")
    pre_save.connect(
        _digest_backup_code, sender=StaticToken, dispatch_uid="breakglass.backup_digest"
    )
