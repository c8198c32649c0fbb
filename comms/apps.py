from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_schedules(sender, **kwargs):
    from breakglass.project.periodic import periodic_ensure

    periodic_ensure(
        name="comms: update cadence reminders and escalation",
        task="comms.tasks.comms_cadence_check",
        every_seconds=60,
    )


class CommsConfig(AppConfig):
    name = "comms"
    verbose_name = "Incident communications"

    def ready(self):
        post_migrate.connect(_ensure_schedules, sender=self)
