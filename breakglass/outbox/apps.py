from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.module_loading import autodiscover_modules


def _ensure_schedules(sender, **kwargs):
    from breakglass.project.periodic import periodic_ensure

    periodic_ensure(
        name="outbox: sweep undelivered messages",
        task="breakglass.outbox.tasks.outbox_sweep_task",
        every_seconds=30,
    )


class OutboxConfig(AppConfig):
    name = "breakglass.outbox"
    label = "outbox"
    verbose_name = "Outbox"

    def ready(self):
        # Bind `shared_task`s to the project's Celery app (broker from settings) in every
        # process, the web server included: otherwise the first enqueue after commit would
        # use Celery's default app, which knows nothing of our broker settings.
        import breakglass.project.celery  # noqa: F401

        # Each app registers its delivery handlers in an `outbox_handlers` module.
        autodiscover_modules("outbox_handlers")
        post_migrate.connect(_ensure_schedules, sender=self)
