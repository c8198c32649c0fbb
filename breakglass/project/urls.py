"""Root URL configuration. Each area owns its routes; the console is closed by default
(see accounts.middleware.RequireVerifiedSessionMiddleware)."""

from django.contrib import admin
from django.urls import include, path

from breakglass.project import dashboard, health, metrics

handler500 = "breakglass.project.errors.server_error"

console_patterns = ([path("", dashboard.home, name="home")], "console")

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include(console_patterns)),
    path("accounts/", include("breakglass.accounts.urls")),
    path("accounts/passkeys/", include("breakglass.accounts.passkey_urls")),
    path("access/", include("breakglass.access.urls")),
    path("api/v1/", include("breakglass.access.api_urls")),
    path("audit/", include("breakglass.audit.urls")),
    path("trust/", include("breakglass.keys.urls")),
    path("drills/", include("drills.urls")),
    path("comms/", include("comms.urls")),
    # The public status page and its Statuspage-compatible API live at the site root.
    path("", include("comms.status_urls")),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
]
