"""Passkeys and security keys (WebAuthn) as a second factor, next to authenticator apps and
backup codes, through django-otp-webauthn.

The library's JSON endpoints are subclassed so that they follow this console's rules:
- registering needs a fresh code (sudo), like adding an authenticator app, except a first
  passkey for someone whose role requires one (selectors.passkey_required);
- a passkey verifies the session of the person already logged in with their password (no
  passwordless login), gives a new session id, and counts as a fresh code for sudo;
- every registration and removal is audited.
The browser side is the library's own module script, served from /static/ under the strict
CSP; its configuration is a JSON data block (not executed), so no inline script is needed.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import never_cache
from django.views.i18n import JavaScriptCatalog
from django_otp import login as otp_login
from django_otp_webauthn import exceptions
from django_otp_webauthn.models import WebAuthnCredential
from django_otp_webauthn.views import (
    BeginCredentialAuthenticationView,
    BeginCredentialRegistrationView,
    CompleteCredentialAuthenticationView,
    CompleteCredentialRegistrationView,
)

from breakglass.accounts import selectors, services
from breakglass.accounts.decorators import public, sudo_is_fresh, sudo_mark_fresh, sudo_required
from breakglass.accounts.removal import authenticator_remove

log = logging.getLogger("breakglass.passkeys")


class SudoNeeded(exceptions.OTPWebAuthnApiError):
    status_code = 403
    default_code = "sudo_required"
    default_detail = "Confirm it's you with a fresh code first (your account page has the link)."


class NotYourPasskey(exceptions.OTPWebAuthnApiError):
    status_code = 403
    default_code = "wrong_user"
    default_detail = "That passkey belongs to another account."


class _OneLineRefusals:
    """A refused ceremony (wrong origin, replayed challenge, unknown key) is expected: one
    warning line with the reason, never a traceback (the library's own exception logging is
    off: OTP_WEBAUTHN_EXCEPTION_LOGGER_NAME is empty)."""

    def handle_exception(self, exc):
        if isinstance(exc, exceptions.OTPWebAuthnApiError):
            cause = exc.__cause__ or exc.__context__
            user = getattr(self.request, "user", None)
            log.warning(
                "passkey %s refused for %s: %s%s",
                type(self).__name__.removeprefix("Passkey"),
                user.get_username() if user and user.is_authenticated else "anonymous",
                exc.code,
                f" ({' '.join(str(cause).split())[:200]})" if cause else "",
            )
        return super().handle_exception(exc)


def passkey_registration_allowed(request) -> bool:
    """A fresh code, or a first passkey for someone whose role requires one."""
    user = request.user
    if not (user.is_authenticated and user.is_verified()):
        return False
    if sudo_is_fresh(request):
        return True
    return selectors.passkey_required(user=user) and not selectors.passkeys_for(user=user)


class _RegistrationRules:
    def check_can_register(self):
        if not passkey_registration_allowed(self.request):
            raise SudoNeeded()


class PasskeyRegisterBegin(_OneLineRefusals, _RegistrationRules, BeginCredentialRegistrationView):
    pass


class PasskeyRegisterComplete(
    _OneLineRefusals, _RegistrationRules, CompleteCredentialRegistrationView
):
    def get_helper(self):
        helper = super().get_helper()
        register_complete = helper.register_complete

        def register_and_audit(*, user, state, data):
            # The credential row and its audit event in one transaction. Only the helper's
            # step is wrapped: the library pops the one-time ceremony state from the session
            # before this, and that must stay popped even when this fails.
            with transaction.atomic():
                credential = register_complete(user=user, state=state, data=data)
                credential = services.passkey_registered_record(credential=credential, actor=user)
            return credential

        helper.register_complete = register_and_audit
        return helper


class PasskeyAuthBegin(_OneLineRefusals, BeginCredentialAuthenticationView):
    """Needs the password step done (the session has a user); verified or not."""

    breakglass_access = "login"

    def check_can_authenticate(self):
        if not self.request.user.is_authenticated:
            raise exceptions.NotAuthenticated()
        super().check_can_authenticate()


class PasskeyAuthComplete(_OneLineRefusals, CompleteCredentialAuthenticationView):
    """Verifies the session (login) or refreshes sudo (already verified): both end with a
    passkey of this user checked just now, so both count as a fresh code."""

    breakglass_access = "login"

    def check_can_authenticate(self):
        if not self.request.user.is_authenticated:
            raise exceptions.NotAuthenticated()
        super().check_can_authenticate()

    def complete_auth(self, device):
        request = self.request
        if device.user_id != request.user.pk:
            raise NotYourPasskey()
        if not request.user.is_verified():
            otp_login(request, device)
            # New privileges, new session id (as after a code in accounts.views.verify).
            request.session.cycle_key()
        sudo_mark_fresh(request, passkey=True)
        services.passkey_used_record(user=request.user, credential=device)

    def get_redirect_url(self):
        from breakglass.accounts.views import safe_next

        return safe_next(self.request, default="")


passkey_js_catalog = public(JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]))


@never_cache
@sudo_required
def passkey_remove(request, pk: int):
    """GET asks for confirmation; POST removes the passkey."""
    credential = get_object_or_404(WebAuthnCredential, pk=pk, user=request.user, confirmed=True)
    return authenticator_remove(
        request,
        name=credential.name,
        consequence="This passkey or security key will stop working for your account.",
        remove=lambda: services.passkey_remove(credential=credential, actor=request.user),
    )
