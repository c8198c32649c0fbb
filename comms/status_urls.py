from django.urls import path

from comms import status_views as views

app_name = "status"

urlpatterns = [
    path("status/", views.status_page, name="page"),
    path("status/subscribe/", views.subscribe, name="subscribe"),
    path("status/subscribe/confirm/<str:token>/", views.subscribe_confirm, name="confirm"),
    path("status/unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("api/v2/summary.json", views.api_summary, name="summary"),
    path("api/v2/status.json", views.api_status, name="status"),
    path("api/v2/components.json", views.api_components, name="components"),
    path("api/v2/incidents.json", views.api_incidents, name="incidents"),
    path("api/v2/incidents/unresolved.json", views.api_unresolved, name="unresolved"),
    path(
        "api/v2/scheduled-maintenances.json", views.api_maintenances, name="scheduled_maintenances"
    ),
    path(
        "api/v2/scheduled-maintenances/upcoming.json",
        views.api_maintenances_upcoming,
        name="scheduled_maintenances_upcoming",
    ),
    path(
        "api/v2/scheduled-maintenances/active.json",
        views.api_maintenances_active,
        name="scheduled_maintenances_active",
    ),
    path("history.atom", views.history_atom, name="history"),
]
