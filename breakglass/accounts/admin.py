from django.contrib import admin

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
