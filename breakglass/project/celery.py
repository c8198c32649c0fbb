"""The Celery application. Start a worker with `celery -A breakglass.project.celery worker`.

Kept out of `breakglass/__init__.py` so the offline verifier never imports Celery.
"""

import os
import sys

from celery import Celery

from breakglass.project.files import private_umask_apply

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "breakglass.project.settings")
if os.path.basename(sys.argv[0]) == "celery" or sys.argv[0].endswith("celery/__main__.py"):
    # A worker or beat: the product's umask, before settings create the data folder. Not
    # when another program (the web process, a test run) merely imports the app.
    private_umask_apply()

app = Celery("breakglass")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="breakglass.ping", ignore_result=False)
def ping() -> str:
    """A task that does nothing: health checks and the Celery round-trip benchmark."""
    return "pong"
