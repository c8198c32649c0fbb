"""Account actions: password throttling, OTP checks, TOTP enrolment, backup codes, roles.

Each function is one transaction that writes its audit event inside it, so an event
exists exactly when the change does (a refused code and its throttle step included).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from django_otp import devices_for_user
from django_otp.models import Device
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from breakglass.accounts import roles
from breakglass.accounts.mfa_secrets import backup_code_digest
from breakglass.accounts.models import LoginThrottle
from breakglass.accounts.selectors import (
    BACKUP_DEVICE_NAME,
    passkey_required,
    passkeys_for,
    username_key,
)
from breakglass.audit.services import audit_record

BACKUP_CODE_COUNT = 10
# Failures older than this are forgotten: last week's typo does not slow today's log-in.
LOGIN_FAILURES_FORGOTTEN_AFTER = timedelta(days=1)


class AccountError(ValueError):
    """A refused account action; str() is a message for the person who asked."""


@dataclass(frozen=True)
class OtpOutcome:
    """The device that accepted a code, or why none did."""

    device: Device | None
    locked_until: datetime | None = None
    # The user's role requires a passkey here, so app and backup codes were not tried.
    passkey_required: bool = False
    # The code is right but its time step was already used: a replay, or the same code
    # typed twice within its 30 seconds (log-in, then the fresh-code step at once).
    reused: bool = False

    @property
    def ok(self) -> bool:
        return self.device is not None

    def wait_seconds(self) -> int:
        return seconds_until(self.locked_until) if self.locked_until else 0


def seconds_until(when: datetime) -> int:
    """Whole seconds to wait until `when`, at least 1 (never "try again in 0 seconds")."""
    return max(1, math.ceil((when - timezone.now()).total_seconds()))


# --- Passwords --------------------------------------------------------------------------


def login_backoff_seconds(failures: int) -> int:
    """Wait after `failures` consecutive failed log-ins: 0 for the first few, then doubling."""
    over = failures - settings.BREAKGLASS_LOGIN_FREE_FAILURES
    if over <= 0:
        return 0
    return min(
        settings.BREAKGLASS_LOGIN_BACKOFF_SECONDS * 2 ** min(over - 1, 30),
        settings.BREAKGLASS_LOGIN_BACKOFF_MAX_SECONDS,
    )


def login_failure_record(*, username: str) -> LoginThrottle:
    """Count a failed password for `username` and set its back-off."""
    now = timezone.now()
    key = username_key(username)
    with transaction.atomic():
        LoginThrottle.objects.filter(
            last_failure_at__lt=now - LOGIN_FAILURES_FORGOTTEN_AFTER
        ).delete()
        # The row lock makes concurrent failures count one by one instead of racing.
        throttle, _ = LoginThrottle.objects.select_for_update().get_or_create(
            username=key, defaults={"last_failure_at": now}
        )
        throttle.failures += 1
        throttle.last_failure_at = now
        wait = login_backoff_seconds(throttle.failures)
        throttle.locked_until = now + timedelta(seconds=wait) if wait else None
        throttle.save()
        audit_record(
            action="auth.login_failed",
            actor_label="anonymous",
            data={"username": key, "failures": throttle.failures, "wait_seconds": wait},
        )
    return throttle


def login_refusal_record(*, username: str, locked_until: datetime) -> None:
    """A log-in refused, unchecked, because the username is still backing off."""
    with transaction.atomic():
        audit_record(
            action="auth.login_throttled",
            actor_label="anonymous",
            data={"username": username_key(username), "locked_until": locked_until.isoformat()},
        )


def login_success_record(*, user) -> None:
    """The password step passed: forget earlier failures for this username."""
    with transaction.atomic():
        LoginThrottle.objects.filter(username=username_key(user.get_username())).delete()
        audit_record(action="auth.login", actor=user)


# --- One-time codes ---------------------------------------------------------------------


def otp_normalize(token: str) -> str:
    return "".join(token.split()).replace("-", "").lower()


def _accepts_shape(device: Device, token: str) -> bool:
    """Send 6-digit codes to authenticator apps and everything else to backup codes, so a
    mistyped app code does not also push the backup codes into back-off (and vice versa)."""
    if isinstance(device, TOTPDevice):
        return token.isdigit() and len(token) == device.digits
    return not (token.isdigit() and len(token) == 6)


def totp_code_already_used(*, device: TOTPDevice, token: str) -> bool:
    """True when `token` is the device's code for a time step it has already accepted.

    django-otp accepts each time step once (`last_t`), so a code seen in transit cannot be
    replayed; a person who types the same code twice is told to wait for the next one
    rather than to check the phone's clock. Asked only after the code was refused, and it
    changes nothing: the refusal has already counted towards the device's back-off.
    """
    if device.last_t < 0 or not token.isdigit():
        return False
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    # The same window of steps as django-otp's check; a match moves `drift` onto the
    # matching step, so t() is then that step.
    return totp.verify(int(token), device.tolerance) and totp.t() <= device.last_t


def _stored_form(device: Device, token: str) -> str:
    """Backup codes are stored as keyed digests (accounts/mfa_secrets.py): look up that."""
    if isinstance(device, StaticDevice):
        return backup_code_digest(device_id=device.pk, code=token)
    return token


_OTP_ACTIONS = {
    "verify": ("auth.otp_verified", "auth.otp_failed"),
    "sudo": ("auth.sudo", "auth.sudo_failed"),
}


def otp_check(*, user, token: str, purpose: str) -> OtpOutcome:
    """Check a code against the user's confirmed devices, honouring each device's back-off.

    While a device is backing off it refuses every code, a correct one included, so
    guessing is limited to about log2(time) attempts per device.
    """
    success_action, failure_action = _OTP_ACTIONS[purpose]
    if passkey_required(user=user) and (purpose == "sudo" or passkeys_for(user=user)):
        # Codes can be phished; a passkey cannot be used on another site. Logging in with
        # a code stays possible only until the first passkey exists (to register it).
        audit_record(action=failure_action, actor=user, data={"passkey_required": True})
        return OtpOutcome(device=None, passkey_required=True)
    token = otp_normalize(token)
    locked_until = None
    reused = False
    with transaction.atomic():
        # select_for_update: two concurrent requests cannot both spend the same code.
        for device in devices_for_user(user, confirmed=True, for_verify=True):
            if not _accepts_shape(device, token):
                continue
            allowed, info = device.verify_is_allowed()
            if allowed and device.verify_token(_stored_form(device, token)):
                audit_record(
                    action=success_action, actor=user, data={"device": device.persistent_id}
                )
                return OtpOutcome(device=device)
            if allowed and isinstance(device, TOTPDevice):
                reused = reused or totp_code_already_used(device=device, token=token)
            if not allowed:
                until = (info or {}).get("locked_until")
                if until and (locked_until is None or until > locked_until):
                    locked_until = until
        data = {"throttled": locked_until is not None}
        if reused:
            data["reused"] = True
        audit_record(action=failure_action, actor=user, data=data)
    return OtpOutcome(device=None, locked_until=locked_until, reused=reused)


# --- Enrolment and backup codes ---------------------------------------------------------


def totp_device_start(*, user, name: str = "Authenticator app") -> TOTPDevice:
    """A new, unconfirmed authenticator device; it counts only once a code confirms it."""
    with transaction.atomic():
        # Enrolments abandoned for an hour hold secrets nobody will confirm; drop them.
        TOTPDevice.objects.filter(
            user=user, confirmed=False, created_at__lt=timezone.now() - timedelta(hours=1)
        ).delete()
        return TOTPDevice.objects.create(user=user, name=name, confirmed=False)


def totp_device_confirm(*, device: TOTPDevice, token: str, name: str = "") -> OtpOutcome:
    """Confirm enrolment with a code from the app; the device's back-off applies."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk, confirmed=False)
        allowed, info = device.verify_is_allowed()
        if not allowed:
            audit_record(
                action="auth.totp_enrol_failed", actor=device.user, data={"throttled": True}
            )
            return OtpOutcome(device=None, locked_until=(info or {}).get("locked_until"))
        if not device.verify_token(otp_normalize(token)):
            audit_record(
                action="auth.totp_enrol_failed", actor=device.user, data={"throttled": False}
            )
            return OtpOutcome(device=None)
        device.confirmed = True
        if name.strip():
            device.name = name.strip()[:64]
        device.save()
        # Abandoned enrolments hold secrets nobody confirmed; drop them.
        TOTPDevice.objects.filter(user=device.user, confirmed=False).delete()
        audit_record(
            action="auth.totp_enrolled", actor=device.user, obj=device, data={"name": device.name}
        )
    return OtpOutcome(device=device)


def totp_device_remove(*, device: TOTPDevice, actor) -> None:
    """Remove an authenticator; the last one cannot go, or the account would lock itself out."""
    with transaction.atomic():
        others = TOTPDevice.objects.select_for_update().filter(user=device.user, confirmed=True)
        if not others.exclude(pk=device.pk).exists():
            raise AccountError(
                "This is your only authenticator app. Add another one before removing it."
            )
        audit_record(
            action="auth.totp_removed", actor=actor, obj=device, data={"name": device.name}
        )
        device.delete()


def passkey_registered_record(*, credential, actor):
    """Name a new passkey and write its audit event (django-otp-webauthn created the row).

    The library leaves the name empty; "Passkey 2 (added 2026-06-01)" lets people tell
    their keys apart on the account page."""
    if not credential.name:
        number = type(credential).objects.filter(user=credential.user).count()
        credential.name = f"Passkey {number} (added {timezone.now():%Y-%m-%d})"
        credential.save(update_fields=["name"])
    audit_record(
        action="auth.passkey_registered",
        actor=actor,
        obj=credential,
        data={"name": credential.name, "aaguid": str(credential.aaguid or "")},
    )
    return credential


def passkey_used_record(*, user, credential) -> None:
    audit_record(
        action="auth.passkey_verified", actor=user, data={"device": credential.persistent_id}
    )


def passkey_remove(*, credential, actor) -> None:
    """Remove a passkey. For someone whose role requires passkeys, the last one cannot go:
    they would be left unable to confirm sensitive actions."""
    from django_otp_webauthn.models import WebAuthnCredential

    with transaction.atomic():
        user = credential.user
        others = WebAuthnCredential.objects.select_for_update().filter(user=user, confirmed=True)
        if passkey_required(user=user) and not others.exclude(pk=credential.pk).exists():
            raise AccountError(
                "Your role requires a passkey. Register another one before removing this one."
            )
        audit_record(
            action="auth.passkey_removed",
            actor=actor,
            obj=credential,
            data={"name": credential.name},
        )
        credential.delete()


def backup_codes_generate(*, user, actor=None) -> list[str]:
    """Replace the user's backup codes with BACKUP_CODE_COUNT fresh ones (each works once).

    The codes are returned for showing once; old codes stop working in the same transaction.
    """
    with transaction.atomic():
        device, _ = StaticDevice.objects.select_for_update().get_or_create(
            user=user, name=BACKUP_DEVICE_NAME, defaults={"confirmed": True}
        )
        device.confirmed = True
        device.throttle_reset(commit=False)
        device.save()
        device.token_set.all().delete()
        codes: list[str] = []
        while len(codes) < BACKUP_CODE_COUNT:
            code = StaticToken.random_token()  # 40 random bits from os.urandom
            if code not in codes:
                codes.append(code)
        # Stored as keyed digests; the codes themselves are shown once and never again.
        StaticToken.objects.bulk_create(
            StaticToken(device=device, token=backup_code_digest(device_id=device.pk, code=code))
            for code in codes
        )
        audit_record(
            action="auth.backup_codes_generated",
            actor=actor or user,
            obj=device,
            data={"user": user.get_username(), "count": len(codes)},
        )
    return codes


def otp_devices_reset(*, user, actor=None) -> int:
    """Delete every OTP device of a user (lost phone and backup codes). The next log-in
    goes through enrolment again; sessions verified with the old devices stop being so."""
    with transaction.atomic():
        count = 0
        for device in list(devices_for_user(user, confirmed=None)):
            device.delete()
            count += 1
        audit_record(
            action="auth.otp_reset",
            actor=actor,
            obj=user,
            data={"user": user.get_username(), "devices": count},
        )
    return count


# --- Roles ------------------------------------------------------------------------------


def role_assign(*, user, role: str, actor=None) -> None:
    """Give a user a console role. Administrators are also staff (the Django admin)."""
    if role not in roles.ALL_ROLES:
        raise AccountError(f"Unknown role {role!r}; expected one of {', '.join(roles.ALL_ROLES)}.")
    with transaction.atomic():
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
        if role == roles.ADMINISTRATOR and not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        audit_record(action="auth.role_assigned", actor=actor, obj=user, data={"role": role})


def role_remove(*, user, role: str, actor=None) -> None:
    with transaction.atomic():
        user.groups.remove(*Group.objects.filter(name=role))
        if role == roles.ADMINISTRATOR and user.is_staff and not user.is_superuser:
            user.is_staff = False
            user.save(update_fields=["is_staff"])
        audit_record(action="auth.role_removed", actor=actor, obj=user, data={"role": role})
