from django.apps import AppConfig
from django.db.backends.signals import connection_created


class AuditConfig(AppConfig):
    name = "breakglass.audit"
    label = "audit"
    verbose_name = "Audit log"

    def ready(self):
        from breakglass.audit.hooks import install

        # Every connection appends its transaction's audit events just before COMMIT.
        connection_created.connect(install, dispatch_uid="breakglass.audit.hooks")
