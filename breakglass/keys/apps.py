from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_schedules(sender, **kwargs):
    from breakglass.project.periodic import periodic_ensure

    periodic_ensure(
        name="keys: refresh the trust bundle before it expires",
        task="breakglass.keys.tasks.bundle_refresh",
        every_seconds=15 * 60,
    )


class KeysConfig(AppConfig):
    name = "breakglass.keys"
    label = "keys"
    verbose_name = "Keys and trust bundle"

    def ready(self):
        from django.core.checks import register

        from breakglass.project.files import data_dir_permission_warnings

        post_migrate.connect(_ensure_schedules, sender=self)
        register(data_dir_permission_warnings, "security")
