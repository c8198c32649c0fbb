from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.module_loading import autodiscover_modules

from breakglass.project.schedules import schedules_ensure


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
        # Every periodic task, from the one table (breakglass/project/schedules.py).
        post_migrate.connect(
            schedules_ensure, sender=self, dispatch_uid="breakglass.project.schedules"
        )
