from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login
from django_otp import user_has_device

from breakglass.accounts.decorators import login_only, public, sudo_mark_fresh
from breakglass.accounts.forms import OTPForm
from breakglass.audit.services import audit_record


def _safe_next(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@public
class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = False


@public
class LogoutView(auth_views.LogoutView):
    pass


@login_only
@never_cache
@sensitive_post_parameters("otp_token")
def verify(request):
    """Second factor for this session. Users with no device yet are sent to enrolment."""
    if not user_has_device(request.user):
        return redirect(f"/accounts/enrol/?next={_safe_next(request, '/')}")
    form = OTPForm(request.user, request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            otp_login(request, form.device)
            sudo_mark_fresh(request)
            audit_record(
                action="auth.otp_verified",
                actor=request.user,
                data={"device": form.device.persistent_id},
            )
            return redirect(_safe_next(request, "/"))
        audit_record(action="auth.otp_failed", actor=request.user)
    return render(request, "accounts/verify.html", {"form": form, "next": _safe_next(request, "/")})


@never_cache
@sensitive_post_parameters("otp_token")
def sudo(request):
    """Re-authentication: a fresh OTP before the most sensitive actions."""
    form = OTPForm(request.user, request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            sudo_mark_fresh(request)
            audit_record(action="auth.sudo", actor=request.user)
            messages.success(
                request, "Confirmed. Sensitive actions are unlocked for a few minutes."
            )
            return redirect(_safe_next(request, "/"))
        audit_record(action="auth.sudo_failed", actor=request.user)
    return render(request, "accounts/sudo.html", {"form": form, "next": _safe_next(request, "/")})
