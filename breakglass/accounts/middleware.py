from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse

PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


class ContentSecurityPolicyMiddleware:
    """Adds the strict CSP from settings to every response that does not set its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        # Nothing in the console needs these browser features; say so explicitly.
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


class RequireVerifiedSessionMiddleware:
    """Every view needs an OTP-verified session unless marked `public` or `login_only`.

    Enforced here rather than per view so that the default is closed: the Django admin,
    new console pages and anything added later are protected without remembering to.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        access = getattr(view_func, "breakglass_access", None)
        if access is None:
            # Class-based views carry the marker on view_class.
            access = getattr(getattr(view_func, "view_class", None), "breakglass_access", None)
        # Static files never get here: WhiteNoise answers them before the view layer.
        if access == "public":
            return None
        user = request.user
        if not user.is_authenticated:
            return redirect(
                f"{reverse('accounts:login')}?{urlencode({'next': request.get_full_path()})}"
            )
        if access == "login":
            return None
        if not user.is_verified():
            return redirect(
                f"{reverse('accounts:verify')}?{urlencode({'next': request.get_full_path()})}"
            )
        return None
