"""Real Celery worker (and beat) processes for integration tests.

The worker runs the project's code against the same PostgreSQL test database and a real
Redis broker, so what the tests see is what production does. Use inside tests marked
`integration` with `@pytest.mark.django_db(transaction=True)` so the worker sees
committed rows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """DATABASE_URL rewritten to the database pytest-django created for this run."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def worker_env(*, broker_url: str | None = None, **extra: str) -> dict[str, str]:
    """Environment for a worker/beat process: the test database, a real broker, and any
    extra variables (e.g. `**smtp_sink.env()`)."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=test_database_url(),
        BREAKGLASS_TEST_REAL_BROKER="1",
        CELERY_BROKER_URL=broker_url or os.environ["REDIS_URL"],
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@contextmanager
def real_broker(url: str | None = None):
    """Make *this* (the test) process publish to a real broker instead of memory://, so
    tasks queued on commit by the code under test reach a worker process.

    Uses the same fail-fast transport options as production settings.
    """
    from django.conf import settings

    from breakglass.project.celery import app

    url = url or os.environ["REDIS_URL"]
    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    _reset_pools(app)
    app.conf.broker_url = url
    app.conf.broker_transport_options = {
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        "max_retries": 0,
    }
    assert settings.CELERY_TASK_PUBLISH_RETRY is False
    try:
        yield app
    finally:
        _reset_pools(app)
        app.conf.broker_url, app.conf.broker_transport_options = saved


def _reset_pools(app) -> None:
    """Forget every pooled broker connection, so the next publish connects to the URL
    configured now. kombu keeps pools in global registries keyed by URL: closing one
    without removing it would leave a closed pool behind for the next user of that URL
    ("Acquire on closed pool"), so reset the registries themselves."""
    from kombu import pools

    pools.reset()
    app._pool = None
    amqp = app.__dict__.get("amqp")  # only if already created
    if amqp is not None:
        amqp._producer_pool = None


@contextmanager
def celery_process(
    *args: str,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    ready: str = "ready",
):
    """Start `celery -A devkit.celery <args>` (the project's app plus the development
    kit's additions) and wait until its log says `ready`."""
    log_path = (
        log_path
        or Path(os.environ.get("TMPDIR", "/tmp")) / f"celery-{os.getpid()}-{time.time_ns()}.log"
    )
    log = open(log_path, "w+b")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "devkit.celery", *args],
        cwd=ROOT,
        env=env or worker_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = log_path.read_text(errors="replace")
            if ready in text:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"celery {' '.join(args)} exited early:\n{text[-4000:]}")
            time.sleep(0.2)
        else:
            raise RuntimeError(
                f"celery {' '.join(args)} not ready in 60s:\n{log_path.read_text()[-4000:]}"
            )
        proc.log_path = log_path
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
        log_path.unlink(missing_ok=True)


@contextmanager
def celery_worker(
    *, concurrency: int = 2, queues: str | None = None, env: dict[str, str] | None = None
):
    args = [
        "worker",
        "--loglevel=INFO",
        f"--concurrency={concurrency}",
        "--pool=prefork",
        "--without-heartbeat",
        "--without-mingle",
        "--without-gossip",
    ]
    if queues:
        args.append(f"--queues={queues}")
    # " ready." and not "ready": a task name could contain the word.
    with celery_process(*args, env=env, ready=" ready.") as proc:
        yield proc


@contextmanager
def celery_beat(*, env: dict[str, str] | None = None):
    """`celery beat` with django-celery-beat's DatabaseScheduler (the test database)."""
    with celery_process(
        "beat",
        "--loglevel=DEBUG",
        "--scheduler=django_celery_beat.schedulers:DatabaseScheduler",
        "--max-interval=1",
        env=env,
        ready="beat: Starting",
    ) as proc:
        yield proc


def wait_for(predicate, *, timeout: float = 30, interval: float = 0.2, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
