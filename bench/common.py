"""Shared helpers for the benchmark scripts in bench/: baselines to express results as
ratios, so figures mean something on any machine.

    from bench.common import bare_view_rate, celery_roundtrip_rate, print_ratios, rate

    baseline = bare_view_rate()                      # requests/s of a do-nothing view
    mine = rate(lambda: client.get("/access/"))      # requests/s of the view under test
    print_ratios({"bare view": baseline, "/access/": mine}, baseline="bare view")

Importing this module has no side effects: Django is set up only when a helper needs it
(`django_setup`), and Celery's worker is started only by `celery_roundtrip_rate`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from django.urls import path

BARE_VIEW_PATH = "/bench/bare/"
INSERT_VIEW_PATH = "/bench/insert/"
# The one row the INSERT baseline writes per request (created on first use, same database).
INSERT_TABLE = "bench_insert_row"


def django_setup(settings_module: str = "tests.settings") -> None:
    """Configure Django once (test settings by default: fast hashers, memory broker)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


def rate(operation: Callable[[], object], *, seconds: float = 2.0, warmup: int = 5) -> float:
    """Call `operation` repeatedly for about `seconds`; return operations per second."""
    for _ in range(warmup):
        operation()
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        operation()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


def _bare_view(request):
    from django.http import HttpResponse

    return HttpResponse(b"ok", content_type="text/plain")


def _insert_view(request):
    from django.db import connection, transaction
    from django.http import HttpResponse

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {INSERT_TABLE} (note) VALUES (%s)", ["bench"])  # noqa: S608
    return HttpResponse(b"ok", content_type="text/plain")


# Both go through the whole middleware stack like any console page; the first does no
# work, the second the least any view that writes does: one INSERT in a transaction.
_bare_view.breakglass_access = "public"
_insert_view.breakglass_access = "public"
urlpatterns = [
    path(BARE_VIEW_PATH.strip("/") + "/", _bare_view),
    path(INSERT_VIEW_PATH.strip("/") + "/", _insert_view),
]


def bare_view_rate(*, seconds: float = 2.0) -> float:
    """Requests per second of a do-nothing view through Django's full request/middleware
    stack, in process (test client): the ceiling any real view is compared with."""
    django_setup()
    from django.test import Client
    from django.test.utils import override_settings

    client = Client()
    with override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["testserver"]):

        def get():
            response = client.get(BARE_VIEW_PATH)
            assert response.status_code == 200, response.status_code

        return rate(get, seconds=seconds)


def backend_cpu_reader(connection) -> Callable[[], float]:
    """A function giving the CPU seconds used so far by `connection`'s PostgreSQL backend
    (the server runs on this machine: /proc/PID/stat), or 0.0 when that cannot be read."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    ticks = os.sysconf("SC_CLK_TCK")

    def read() -> float:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / ticks

    return read


class CpuMeter:
    """Wall-clock time and CPU time (this process plus its PostgreSQL backend) of a block:

        with CpuMeter(connection) as meter:
            ...
        meter.wall, meter.cpu

    CPU time is what a figure costs whatever else runs on the machine; on a busy shared
    machine it is the steadier of the two."""

    def __init__(self, connection):
        connection.ensure_connection()
        self._backend = backend_cpu_reader(connection)
        self.wall = self.cpu = 0.0

    def __enter__(self):
        self._started = (time.perf_counter(), time.process_time(), self._backend())
        return self

    def __exit__(self, *exc):
        wall, cpu, backend = self._started
        self.wall = time.perf_counter() - wall
        self.cpu = time.process_time() - cpu + self._backend() - backend


def insert_view_rate(*, seconds: float = 2.0) -> float:
    """Requests per second of a view that INSERTs one row in a transaction, through the
    same stack as `bare_view_rate`, on the configured database: the ceiling any view
    that writes is compared with (the table is created here if it is missing)."""
    return insert_view_cost(seconds=seconds)[0]


def insert_view_cost(*, seconds: float = 2.0) -> tuple[float, float]:
    """(requests per second, CPU seconds per request of this process and its PostgreSQL
    backend) of the one-INSERT view (see `insert_view_rate`)."""
    django_setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    with connection.cursor() as cursor:
        serial = "bigserial" if connection.vendor == "postgresql" else "integer"
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {INSERT_TABLE} "
            f"(id {serial} PRIMARY KEY, note varchar(20) NOT NULL)"
        )
    client = Client()
    with override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["testserver"]):

        def post():
            response = client.post(INSERT_VIEW_PATH)
            assert response.status_code == 200, response.status_code

        for _ in range(5):
            post()
        count = 0
        with CpuMeter(connection) as meter:
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                post()
                count += 1
        return count / meter.wall, meter.cpu / count


def celery_roundtrip_rate(*, count: int = 200, redis_url: str | None = None) -> float:
    """No-op tasks per second, sent one at a time and each awaited, through real Redis
    and a real worker process (`breakglass.ping`)."""
    django_setup()
    from breakglass.project.celery import app, ping
    from devkit.workers import celery_process

    url = redis_url or os.environ.get("REDIS_URL")
    if not url:
        raise RuntimeError("celery_roundtrip_rate needs REDIS_URL (a real Redis)")
    env = dict(
        os.environ,
        CELERY_BROKER_URL=url,
        CELERY_RESULT_BACKEND=url,
        BREAKGLASS_TEST_REAL_BROKER="1",
        DJANGO_SETTINGS_MODULE=os.environ["DJANGO_SETTINGS_MODULE"],
    )
    saved = (app.conf.broker_url, app.conf.result_backend, app.conf.task_ignore_result)
    app.conf.update(broker_url=url, result_backend=url, task_ignore_result=False)
    try:
        with celery_process(
            "worker",
            "--loglevel=INFO",
            "--concurrency=1",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            env=env,
            ready="ready",
        ):
            for _ in range(5):  # warm up connections
                ping.apply_async().get(timeout=30)
            started = time.perf_counter()
            for _ in range(count):
                assert ping.apply_async().get(timeout=30) == "pong"
            return count / (time.perf_counter() - started)
    finally:
        app.conf.update(broker_url=saved[0], result_backend=saved[1], task_ignore_result=saved[2])


def print_ratios(figures: dict[str, float], *, baseline: str, unit: str = "ops/s") -> None:
    """Print each figure and its ratio to `baseline` (absolute numbers vary by machine;
    ratios are what the README quotes)."""
    base = figures[baseline]
    width = max(len(name) for name in figures)
    for name, value in figures.items():
        print(f"{name:<{width}}  {value:10.1f} {unit}  {value / base:8.3f}x {baseline}")


def summary_line(name: str, ratio: float, baseline: str, *, target: str) -> str:
    """The last line every benchmark prints and `bench/all` collects, e.g.
    `game_day: 0.123x no-op Celery tasks (target >= 0.1x)`. `target` is the comparison
    as written in the README (">= 0.1x", "<= 1.3x"); met or not is for the reader."""
    return f"{name}: {ratio:.3f}x {baseline} (target {target})"


if __name__ == "__main__":
    view = bare_view_rate()
    figures = {"bare Django view": view}
    if os.environ.get("REDIS_URL"):
        figures["Celery no-op round trip"] = celery_roundtrip_rate()
    print_ratios(figures, baseline="bare Django view")


def bench_database(url: str, *, suffix: str) -> str:
    """A fresh PostgreSQL database beside the one `url` names (its name plus `_suffix`),
    dropped and created again, so a benchmark never runs on data a test or a person left."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/") + "_" + suffix
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path="/" + name))
