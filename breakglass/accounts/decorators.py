"""Access markers for views. The console is closed by default: every view requires an
OTP-verified session unless it is explicitly marked otherwise here, so a new view that
forgets a decorator fails closed rather than open."""

from __future__ import annotations

import functools
import time
from urllib.parse import urlencode

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse

SUDO_SESSION_KEY = "breakglass_sudo_at"


def public(view):
    """Reachable without logging in (status page, trust bundle, subscriber links, API)."""
    view.breakglass_access = "public"
    return view


def login_only(view):
    """Needs a password login but not yet an OTP (the OTP step and enrolment themselves)."""
    view.breakglass_access = "login"
    return view


def sudo_is_fresh(request) -> bool:
    """An OTP was entered in this session within the last BREAKGLASS_SUDO_SECONDS."""
    if not request.user.is_authenticated or not request.user.is_verified():
        return False
    try:
        stamp = float(request.session.get(SUDO_SESSION_KEY) or 0)
    except (TypeError, ValueError):
        return False
    return time.time() - stamp <= settings.BREAKGLASS_SUDO_SECONDS


def sudo_mark_fresh(request, *, passkey: bool = False) -> bool:
    """Start the sudo window after a second factor was checked just now. Returns whether it
    did: for roles in BREAKGLASS_PASSKEY_REQUIRED_ROLES only a passkey does, never a code
    (from the code step, enrolment or anywhere else)."""
    from breakglass.accounts.selectors import passkey_required

    if not passkey and passkey_required(user=request.user):
        return False
    request.session[SUDO_SESSION_KEY] = time.time()
    return True


SUDO_CODE_FIELD = "sudo_otp"


def sudo_required(view):
    """The most sensitive actions need an OTP entered within the last few minutes.

    A stale session is sent to the sudo page, which comes back here (as a GET) once a
    fresh code is in: views behind this should show a confirmation form on GET rather
    than act, so nothing happens that the person did not confirm after re-authenticating.

    A form may carry the fresh code itself, in a `sudo_otp` field beside the action's
    button (the approvals queue does): the code is checked exactly as the sudo page
    checks it (`accounts.views.sudo_code_check`: rate limited, throttled, never for roles
    that need a passkey) and the action goes ahead in the same request, since pressing
    the button with the code typed is the confirmation. A wrong code goes back to the
    form (`next`) with the reason, and nothing happens.
    """

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not sudo_is_fresh(request):
            if request.method == "POST" and SUDO_CODE_FIELD in request.POST:
                from django.contrib import messages

                from breakglass.accounts.views import safe_next, sudo_code_check

                form, refused = sudo_code_check(
                    request, {"otp_token": request.POST[SUDO_CODE_FIELD]}
                )
                if not refused and form.is_valid() and sudo_is_fresh(request):
                    return view(request, *args, **kwargs)
                problem = (
                    refused
                    or " ".join(form.errors.get("otp_token", []))
                    or "Confirm with your passkey or security key first."
                )
                messages.error(request, f"Nothing was done: {problem}")
                return redirect(safe_next(request, request.path))
            query = urlencode({"next": request.get_full_path()})
            return redirect(f"{reverse('accounts:sudo')}?{query}")
        return view(request, *args, **kwargs)

    wrapper.breakglass_sudo = True
    return wrapper
