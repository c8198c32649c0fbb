"""PostgreSQL restarts under long-running processes: they recover on their own.

A private cluster (tests/postgres_server.py), never the shared one. Run as a script
(`python -m tests.foundation.test_postgres_restart loop`) this module is also the
long-running process under test: it appends an audit event through a retried service
entry point each time it reads a line on stdin, keeping its connection in between.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.postgres_server import missing, private_postgres

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _scrape(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    if missing():
        pytest.skip(missing())
    with private_postgres() as server:
        env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="tests.settings",
            DATABASE_URL=server.url(),
            BREAKGLASS_DATA_DIR=str(tmp_path_factory.mktemp("pg-restart")),
            PYTHONUNBUFFERED="1",
        )
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        server.env = env
        yield server


def test_a_service_loop_carries_on_after_a_postgresql_restart(postgres):
    loop = subprocess.Popen(
        [sys.executable, "-m", "tests.foundation.test_postgres_restart", "loop"],
        cwd=ROOT,
        env=postgres.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def step() -> str:
            loop.stdin.write("go\n")
            loop.stdin.flush()
            return loop.stdout.readline().strip()

        assert step() == "ok 1"
        postgres.restart()
        # The kept connection died with the restart: the next call is retried on a new
        # one, not failed, and nothing is written twice.
        assert step() == "ok 2"
        assert step() == "ok 3"
    finally:
        loop.stdin.close()
        loop.wait(timeout=30)
    assert loop.returncode == 0, loop.stderr.read()


def test_serve_metrics_answers_again_after_a_postgresql_restart(postgres):
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve_metrics", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=postgres.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        assert server.stdout.readline().startswith("Serving Breakglass metrics")
        status, body = _scrape(url)
        assert status == 200 and "breakglass_" in body
        postgres.stop()
        status, body = _scrape(url)
        assert (status, body) == (503, "the database is unreachable\n")
        postgres.start()
        status, body = _scrape(url)
        assert status == 200 and "breakglass_" in body
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert "Traceback" not in stderr
    assert "serve_metrics: the database is unreachable" in stderr


def _loop() -> None:
    import django

    django.setup()
    from django.db import transaction

    from breakglass.audit.services import audit_record
    from breakglass.project.transient import retry_transient

    @retry_transient
    def record() -> int:
        with transaction.atomic():
            event = audit_record(action="test.loop")
        return event.seq

    for _line in sys.stdin:
        print(f"ok {record()}", flush=True)


if __name__ == "__main__":
    assert sys.argv[1] == "loop"
    _loop()
