"""The Celery application. Start a worker with `celery -A breakglass.project.celery worker`.

Kept out of `breakglass/__init__.py` so the offline verifier never imports Celery.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "breakglass.project.settings")

app = Celery("breakglass")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="breakglass.ping", ignore_result=False)
def ping() -> str:
    """A task that does nothing: health checks and the Celery round-trip benchmark."""
    return "pong"
