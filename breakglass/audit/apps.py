from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


def _ensure_schedules(sender, **kwargs):
    from breakglass.project.periodic import periodic_ensure

    periodic_ensure(
        name="audit: record the chain head outside the database",
        task="breakglass.audit.tasks.audit_checkpoint_task",
        every_seconds=300,
    )


class AuditConfig(AppConfig):
    name = "breakglass.audit"
    label = "audit"
    verbose_name = "Audit log"

    def ready(self):
        from breakglass.audit.hooks import install

        post_migrate.connect(_ensure_schedules, sender=self)
        # Every connection appends its transaction's audit events just before COMMIT.
        connection_created.connect(install, dispatch_uid="breakglass.audit.hooks")
