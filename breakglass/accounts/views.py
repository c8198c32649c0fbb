from __future__ import annotations

from base64 import b32encode
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import DEVICE_ID_SESSION_KEY, user_has_device
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from breakglass.accounts import selectors, services
from breakglass.accounts.decorators import (
    SUDO_SESSION_KEY,
    login_only,
    public,
    sudo_is_fresh,
    sudo_mark_fresh,
    sudo_required,
)
from breakglass.accounts.forms import EnrolForm, LoginForm, OTPForm
from breakglass.accounts.passkeys import passkey_registration_allowed
from breakglass.accounts.qr import qr_svg
from breakglass.accounts.ratelimit import client_address, ratelimit_hit, wait_message
from breakglass.accounts.removal import authenticator_remove

ENROL_SESSION_KEY = "breakglass_enrol_device"
BACKUP_CODES_SESSION_KEY = "breakglass_backup_codes"
LOW_BACKUP_CODES = 3


def safe_next(request, default: str = "/") -> str:
    """The `next` parameter if it is a path on this site, else `default`.

    Only site-relative paths are accepted (no scheme, no host, no `//` or `/\\`), so a
    crafted link cannot bounce someone who just entered an OTP to another site.
    """
    target = request.POST.get("next") or request.GET.get("next") or ""
    if (
        target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and url_has_allowed_host_and_scheme(target, allowed_hosts=None)
    ):
        return target
    return default


def _rate_limited(request, *, scope: str, limit: tuple[int, int]) -> str:
    """The refusal message when this client is over `limit`, else "". Fails open: a
    broken counter must not lock responders out (accounts/ratelimit.py)."""
    wait = ratelimit_hit(scope=scope, key=client_address(request), limit=limit, fail_open=True)
    return wait_message(wait) if wait else ""


def _with_next(url_name: str, next_url: str) -> str:
    return f"{reverse(url_name)}?{urlencode({'next': next_url})}"


@public
class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    form_class = LoginForm
    redirect_authenticated_user = False

    def post(self, request, *args, **kwargs):
        refused = _rate_limited(request, scope="login", limit=settings.BREAKGLASS_RATELIMIT_LOGIN)
        if refused:
            form = self.get_form()
            form.errors.clear()
            form.add_error(None, refused)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        # A password alone never carries a second factor over from an earlier login.
        self.request.session.pop(DEVICE_ID_SESSION_KEY, None)
        self.request.session.pop(SUDO_SESSION_KEY, None)
        services.login_success_record(user=form.get_user())
        return response

    def get_success_url(self):
        return _with_next("accounts:verify", safe_next(self.request))


@public
class LogoutView(auth_views.LogoutView):
    pass


@login_only
@never_cache
@sensitive_post_parameters("otp_token")
def verify(request):
    """Second factor for this session. Users with no device yet are sent to enrolment."""
    next_url = safe_next(request)
    if request.user.is_verified():
        return redirect(next_url)
    if not user_has_device(request.user):
        return redirect(_with_next("accounts:enrol", next_url))
    if request.method == "POST":
        refused = _rate_limited(request, scope="otp", limit=settings.BREAKGLASS_RATELIMIT_OTP)
        if refused:
            form = OTPForm(request.user, None, purpose="verify")
            context = {"form": form, "next": next_url, "refused": refused}
            return render(request, "accounts/verify.html", context, status=429)
    form = OTPForm(
        request.user, request.POST if request.method == "POST" else None, purpose="verify"
    )
    if form.is_valid():
        otp_login(request, form.device)
        # New privileges, new session id: a session id seen before this point is worthless.
        request.session.cycle_key()
        if not sudo_mark_fresh(request):
            # A code got this person in only to register their first passkey (a code
            # cannot unlock sensitive actions for their role).
            messages.warning(
                request,
                "Your role requires a passkey. Register one now: sensitive actions stay "
                "locked until you confirm them with it.",
            )
            return redirect("accounts:account")
        if isinstance(form.device, StaticDevice):
            _warn_if_few_backup_codes(request)
        return redirect(next_url)
    return render(request, "accounts/verify.html", _otp_page(request, form, next_url))


def _otp_page(request, form, next_url: str) -> dict:
    return {
        "form": form,
        "next": next_url,
        "has_passkeys": bool(selectors.passkeys_for(user=request.user)),
        "passkey_required": selectors.passkey_required(user=request.user),
    }


def sudo_code_check(request, data) -> tuple[OTPForm, str]:
    """Check a fresh code for sensitive actions: rate limited per client like every code
    entry, then the OTP form (throttling, backup codes, roles that need a passkey). A
    valid code starts the sudo window. Returns the form and the rate limit's refusal ("")
    when there is one. The sudo page and codes typed beside an action both use this."""
    refused = _rate_limited(request, scope="otp", limit=settings.BREAKGLASS_RATELIMIT_OTP)
    if refused:
        return OTPForm(request.user, None, purpose="sudo"), refused
    form = OTPForm(request.user, data, purpose="sudo")
    if form.is_valid():
        sudo_mark_fresh(request)
    return form, ""


@never_cache
@sensitive_post_parameters("otp_token")
def sudo(request):
    """Re-authentication: a fresh OTP before the most sensitive actions."""
    next_url = safe_next(request)
    if request.method != "POST":
        form = OTPForm(request.user, None, purpose="sudo")
        return render(request, "accounts/sudo.html", _otp_page(request, form, next_url))
    form, refused = sudo_code_check(request, request.POST)
    if refused:
        context = {"form": form, "next": next_url, "refused": refused}
        return render(request, "accounts/sudo.html", context, status=429)
    if form.is_valid():
        messages.success(request, "Confirmed. Sensitive actions are unlocked for a few minutes.")
        return redirect(next_url)
    return render(request, "accounts/sudo.html", _otp_page(request, form, next_url))


def _pending_device(request) -> TOTPDevice:
    pk = request.session.get(ENROL_SESSION_KEY)
    device = None
    if pk:
        device = TOTPDevice.objects.filter(pk=pk, user=request.user, confirmed=False).first()
    if device is None:
        device = services.totp_device_start(user=request.user)
        request.session[ENROL_SESSION_KEY] = device.pk
    return device


@login_only
@never_cache
@sensitive_post_parameters("otp_token")
def enrol(request):
    """Add an authenticator app: QR code and key, then a first code to confirm it.

    Without any device yet, the password session is enough (first enrolment). Adding a
    device to an account that has one needs that factor, freshly: otherwise a stolen
    password would be enough to add the thief's phone.
    """
    user = request.user
    has_device = user_has_device(user)
    next_url = safe_next(request, reverse("accounts:account") if has_device else "/")
    if has_device:
        if not user.is_verified():
            return redirect(_with_next("accounts:verify", request.get_full_path()))
        if not sudo_is_fresh(request):
            return redirect(_with_next("accounts:sudo", request.get_full_path()))

    device = _pending_device(request)
    form = EnrolForm(device, request.POST if request.method == "POST" else None)
    if form.is_valid():
        request.session.pop(ENROL_SESSION_KEY, None)
        otp_login(request, form.device)
        request.session.cycle_key()
        sudo_mark_fresh(request)
        if selectors.backup_codes_remaining(user=user) == 0:
            codes = services.backup_codes_generate(user=user)
            request.session[BACKUP_CODES_SESSION_KEY] = codes
            return redirect(_with_next("accounts:backup_codes", next_url))
        messages.success(request, f"“{form.device.name}” is set up.")
        return redirect(next_url)

    secret = b32encode(device.bin_key).decode()
    context = {
        "form": form,
        "next": next_url,
        "first_device": not has_device,
        "qr": qr_svg(device.config_url, title="QR code for your authenticator app"),
        # Groups of four are easier to type; apps ignore the spaces.
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "secret_raw": secret,
    }
    return render(request, "accounts/enrol.html", context)


@never_cache
def backup_codes(request):
    """Shows freshly generated backup codes, once: they are not stored for display."""
    codes = request.session.pop(BACKUP_CODES_SESSION_KEY, None)
    if not codes:
        messages.info(
            request,
            "Backup codes are shown only once, right after they are made. "
            "If you lost them, generate new ones.",
        )
        return redirect("accounts:account")
    next_url = safe_next(request, reverse("accounts:account"))
    return render(request, "accounts/backup_codes.html", {"codes": codes, "next": next_url})


@never_cache
def account(request):
    user = request.user
    remaining = selectors.backup_codes_remaining(user=user)
    context = {
        "passkeys": selectors.passkeys_for(user=user),
        "passkey_required": selectors.passkey_required(user=user),
        "passkey_can_register": passkey_registration_allowed(request),
        "devices": selectors.totp_devices_for(user=user),
        "backup_remaining": remaining,
        "backup_low": remaining <= LOW_BACKUP_CODES,
        "roles": selectors.roles_of(user=user),
        "sudo_fresh": sudo_is_fresh(request),
        "current_device_id": request.session.get(DEVICE_ID_SESSION_KEY),
    }
    return render(request, "accounts/account.html", context)


@never_cache
@sudo_required
def backup_codes_regenerate(request):
    """GET asks for confirmation; POST replaces every backup code with new ones."""
    if request.method == "POST":
        codes = services.backup_codes_generate(user=request.user)
        request.session[BACKUP_CODES_SESSION_KEY] = codes
        return redirect("accounts:backup_codes")
    return render(
        request,
        "accounts/confirm.html",
        {
            "title": "New backup codes",
            "text": "This makes ten new backup codes and stops every current one from working.",
            "action": request.path,
            "button": "Generate new backup codes",
        },
    )


@never_cache
@sudo_required
def device_remove(request, pk: int):
    """GET asks for confirmation; POST removes the authenticator app."""
    device = get_object_or_404(TOTPDevice, pk=pk, user=request.user, confirmed=True)
    return authenticator_remove(
        request,
        name=device.name,
        consequence="Codes from this app will stop working for your account.",
        remove=lambda: services.totp_device_remove(device=device, actor=request.user),
    )


@public
def admin_login(request):
    """The Django admin's login page. The admin has no login of its own: it uses the
    console's, so it gets the OTP step and throttling, and only staff get through."""
    next_url = safe_next(request, reverse("admin:index"))
    user = request.user
    if not user.is_authenticated:
        return redirect(_with_next("accounts:login", next_url))
    if not user.is_verified():
        return redirect(_with_next("accounts:verify", next_url))
    if not (user.is_active and user.is_staff):
        raise PermissionDenied("The Django admin is for administrators.")
    return redirect(next_url)


def _warn_if_few_backup_codes(request) -> None:
    remaining = selectors.backup_codes_remaining(user=request.user)
    if remaining <= LOW_BACKUP_CODES:
        messages.warning(
            request,
            f"You used a backup code; {remaining} left. Generate new ones on your account page.",
        )
