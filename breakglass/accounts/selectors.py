"""Reads about accounts: devices, backup codes and log-in throttling."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from breakglass.accounts.models import LoginThrottle
from breakglass.accounts.roles import ALL_ROLES

BACKUP_DEVICE_NAME = "backup"


def username_key(username: str) -> str:
    return username.strip().casefold()[:150]


def login_locked_until(*, username: str) -> datetime | None:
    """When password log-ins for this username are allowed again, or None if they are now."""
    locked_until = (
        LoginThrottle.objects.filter(username=username_key(username))
        .values_list("locked_until", flat=True)
        .first()
    )
    if locked_until and locked_until > timezone.now():
        return locked_until
    return None


def totp_devices_for(*, user) -> list[TOTPDevice]:
    return list(TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id"))


def backup_codes_remaining(*, user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def backup_device_for(*, user) -> StaticDevice | None:
    return StaticDevice.objects.filter(user=user, name=BACKUP_DEVICE_NAME).first()


def roles_of(*, user) -> list[str]:
    """The console roles a user holds, in the order roles.ALL_ROLES lists them."""
    if not user.is_authenticated:
        return []
    held = set(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
    return [role for role in ALL_ROLES if role in held]


def passkeys_for(*, user) -> list:
    """The user's confirmed passkeys and security keys (WebAuthn credentials)."""
    from django_otp_webauthn.models import WebAuthnCredential

    return list(WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("id"))


def passkey_required(*, user) -> bool:
    """The user holds a role listed in BREAKGLASS_PASSKEY_REQUIRED_ROLES.

    The one home of that rule: the OTP check refuses app and backup codes for the fresh-code
    step (and for logging in once a passkey exists), registration allows a first passkey
    without a fresh code, and the pages explain it, all by asking this.
    """
    from django.conf import settings

    required = set(settings.BREAKGLASS_PASSKEY_REQUIRED_ROLES)
    return bool(required) and any(role in required for role in roles_of(user=user))
