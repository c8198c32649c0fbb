from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_schedules(sender, **kwargs):
    from breakglass.project.periodic import periodic_ensure

    periodic_ensure(
        name="drills: recover lost runs and pump game days",
        task="drills.tasks.drill_runs_reap_task",
        # With 20 s leases, a dead worker's run is taken over within about 30 s.
        every_seconds=10,
    )
    periodic_ensure(
        name="drills: weekly report",
        task="drills.tasks.drill_report_send_task",
        cron="0 7 * * 1",
        kwargs={"days": 7},
    )


class DrillsConfig(AppConfig):
    name = "drills"
    verbose_name = "Drills"

    def ready(self):
        post_migrate.connect(_ensure_schedules, sender=self)
