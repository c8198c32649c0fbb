from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "breakglass.audit"
    label = "audit"
    verbose_name = "Audit log"
