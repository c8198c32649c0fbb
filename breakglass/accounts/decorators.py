"""Access markers for views. The console is closed by default: every view requires an
OTP-verified session unless it is explicitly marked otherwise here, so a new view that
forgets a decorator fails closed rather than open."""

from __future__ import annotations

import functools
import time

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
    stamp = request.session.get(SUDO_SESSION_KEY)
    return bool(stamp) and time.time() - float(stamp) <= settings.BREAKGLASS_SUDO_SECONDS


def sudo_mark_fresh(request) -> None:
    request.session[SUDO_SESSION_KEY] = time.time()


def sudo_required(view):
    """The most sensitive actions need an OTP entered within the last few minutes."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not sudo_is_fresh(request):
            return redirect(f"{reverse('accounts:sudo')}?next={request.get_full_path()}")
        return view(request, *args, **kwargs)

    return wrapper
