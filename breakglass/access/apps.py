from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_schedules(sender, **kwargs):
    from breakglass.project.periodic import periodic_ensure

    periodic_ensure(
        name="access: expire stale requests and grants",
        task="breakglass.tasks.grants_expire_task",
        every_seconds=60,
    )


class BreakglassConfig(AppConfig):
    # The label stays "breakglass" so migrations, table names and content types carry over.
    name = "breakglass.access"
    label = "breakglass"
    verbose_name = "Break-glass access"

    def ready(self):
        post_migrate.connect(_ensure_schedules, sender=self)
