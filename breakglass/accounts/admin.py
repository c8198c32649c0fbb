from django.contrib import admin
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin as _StaticDeviceAdmin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin as _TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from breakglass.accounts.models import LoginThrottle
from breakglass.accounts.views import admin_login

# The admin's own login form would skip the OTP step; send it to the console's instead.
# (RequireVerifiedSessionMiddleware already keeps unverified sessions out of the admin.)
admin.site.login = admin_login


@admin.register(LoginThrottle)
class LoginThrottleAdmin(admin.ModelAdmin):
    """Deleting a row lifts the back-off for that username (a locked-out responder)."""

    list_display = ("username", "failures", "last_failure_at", "locked_until")
    search_fields = ("username",)
    readonly_fields = ("username", "failures", "last_failure_at", "locked_until")

    def has_add_permission(self, request):
        return False


# --- OTP devices: seen and removed in the admin, never created, edited or read out ------
#
# With django-otp's own admin an administrator could read anyone's TOTP key (change page,
# QR view) and backup codes (the static-token inline), or add a device with a key they
# chose: their own OTP would be enough to become anyone. OTP_ADMIN_HIDE_SENSITIVE_DATA
# hides keys on existing devices; these classes close the rest. Removing a device (a lost
# phone) stays possible, and is an audit event (breakglass/accounts/audit_hooks.py).


class _DeviceAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TOTPDeviceAdmin(_DeviceAdminMixin, _TOTPDeviceAdmin):
    exclude = ("key",)


class StaticDeviceAdmin(_DeviceAdminMixin, _StaticDeviceAdmin):
    inlines = []


for _model, _admin in ((TOTPDevice, TOTPDeviceAdmin), (StaticDevice, StaticDeviceAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)
