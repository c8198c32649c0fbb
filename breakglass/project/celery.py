"""The Celery application. Start a worker with `celery -A breakglass.project.celery worker`.

Kept out of `breakglass/__init__.py` so the offline verifier never imports Celery.
"""

import os
import sys

from celery import Celery, signals

from breakglass.project.files import private_umask_apply

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "breakglass.project.settings")
if os.path.basename(sys.argv[0]) == "celery" or sys.argv[0].endswith("celery/__main__.py"):
    # A worker or beat: the product's umask, before settings create the data folder. Not
    # when another program (the web process, a test run) merely imports the app.
    private_umask_apply()

app = Celery("breakglass")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
def _database_connections_checked(sender=None, **kwargs) -> None:
    """Before each task, what Django does before each request: drop a connection that
    failed (a restarted database) or outlived CONN_MAX_AGE, and health-check the one kept
    at its first use. Celery's own Django fix-up would instead close every connection
    before and after every task, so each task paid for a new PostgreSQL backend (fork,
    authentication, catalog caches): more than a drill step or an outbox batch costs.
    It is told to leave them to this (CELERY_DB_REUSE_MAX in settings)."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@app.task(name="breakglass.ping", ignore_result=False)
def ping() -> str:
    """A task that does nothing: health checks and the Celery round-trip benchmark."""
    return "pong"


# One line on standard output each, whatever the log level: scripts/supervise.py waits for
# them (its quiet default logs at WARNING, where Celery's own "ready." line is not shown).
# sys.__stdout__: Celery redirects sys.stdout into its log as WARNING lines.
@signals.worker_ready.connect
def _announce_worker_ready(**kwargs) -> None:
    print("breakglass: worker ready", file=sys.__stdout__, flush=True)


@signals.beat_init.connect
def _announce_scheduler_started(**kwargs) -> None:
    print("breakglass: scheduler started", file=sys.__stdout__, flush=True)
