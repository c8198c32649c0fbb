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


def sudo_required(view):
    """The most sensitive actions need an OTP entered within the last few minutes.

    A stale session is sent to the sudo page, which comes back here (as a GET) once a
    fresh code is in: views behind this should show a confirmation form on GET rather
    than act, so nothing happens that the person did not confirm after re-authenticating.
    """

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not sudo_is_fresh(request):
            query = urlencode({"next": request.get_full_path()})
            return redirect(f"{reverse('accounts:sudo')}?{query}")
        return view(request, *args, **kwargs)

    wrapper.breakglass_sudo = True
    return wrapper
