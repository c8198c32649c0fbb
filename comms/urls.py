from django.urls import path

from comms import alert_views, views

app_name = "comms"

urlpatterns = [
    path("", views.incident_list, name="incidents"),
    path("declare/", views.incident_declare, name="declare"),
    path("incidents/<str:reference>/", views.incident_room, name="incident"),
    path("incidents/<str:reference>/roles/", views.incident_roles, name="roles"),
    path("incidents/<str:reference>/state/", views.incident_state, name="state"),
    path("incidents/<str:reference>/impact/", views.incident_impact, name="impact"),
    path("incidents/<str:reference>/postmortem/", views.incident_postmortem, name="postmortem"),
    path("incidents/<str:reference>/notes/", views.incident_note, name="note"),
    path("incidents/<str:reference>/draft/", views.update_draft, name="draft"),
    path("updates/<int:pk>/review/", views.update_review, name="review"),
    path("updates/<int:pk>/publish/", views.update_publish, name="publish"),
    path("updates/<int:pk>/resend/", views.update_resend, name="resend"),
    path("subscribers/", views.subscriber_list, name="subscribers"),
    path("subscribers/export.csv", views.subscriber_export, name="subscriber_export"),
    path("webhooks/", views.webhook_list, name="webhooks"),
    path("alerts/alertmanager/", alert_views.alertmanager, name="alerts_alertmanager"),
    path(
        "alerts/alertmanager/<str:token>/",
        alert_views.alertmanager,
        name="alerts_alertmanager_token",
    ),
    path("alerts/pagerduty/", alert_views.pagerduty, name="alerts_pagerduty"),
]
