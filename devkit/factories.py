"""Deterministic builders for test data: named people with confirmed OTP devices, and
clients logged in as them with an OTP-verified session."""

from __future__ import annotations

import time

from django.contrib.auth.models import Group, User
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from breakglass.accounts import roles
from breakglass.accounts.decorators import SUDO_SESSION_KEY

# A fixed TOTP secret per user keeps tests reproducible; never used outside tests.
_TEST_KEY = "3132333435363738393031323334353637383930"


def user_make(
    username: str,
    *,
    role_names: tuple[str, ...] = (),
    email: str | None = None,
    password: str = "correct horse battery",
    otp: bool = True,
    **extra,
) -> User:
    user = User.objects.create_user(
        username=username, email=email or f"{username}@example.test", password=password, **extra
    )
    for name in role_names:
        group, _ = Group.objects.get_or_create(name=name)
        user.groups.add(group)
    if otp:
        TOTPDevice.objects.create(user=user, name="phone", key=_TEST_KEY, confirmed=True)
    return user


def totp_now(user: User) -> str:
    """The current 6-digit code for a user's test device."""
    device = TOTPDevice.objects.get(user=user, name="phone")
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():06d}"


def roles_for(*names: str) -> tuple[str, ...]:
    unknown = set(names) - set(roles.ALL_ROLES)
    assert not unknown, unknown
    return names


def backup_code_digests(user: User, codes) -> set[str]:
    """What the database holds for these backup codes (keyed digests, never the codes)."""
    from django_otp.plugins.otp_static.models import StaticDevice

    from breakglass.accounts.mfa_secrets import backup_code_digest

    device = StaticDevice.objects.get(user=user)
    return {backup_code_digest(device_id=device.pk, code=code) for code in codes}


def verified_client(user, *, sudo: bool = True) -> Client:
    """A test client logged in with an OTP-verified session (and fresh sudo by default)."""
    client = Client()
    client.force_login(user)
    session = client.session
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is not None:
        session["otp_device_id"] = device.persistent_id
    if sudo:
        session[SUDO_SESSION_KEY] = time.time()
    session.save()
    return client
