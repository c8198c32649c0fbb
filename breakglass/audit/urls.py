from django.urls import path

from breakglass.audit import views

app_name = "audit"

urlpatterns = [
    path("", views.audit_home, name="home"),
    path("export.jsonl", views.audit_export, name="export"),
]
