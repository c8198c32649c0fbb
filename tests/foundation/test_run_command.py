"""`scripts/run` starts the whole product on the embedded defaults (SQLite, filesystem
broker) and stops it cleanly; a child that dies takes the run down loudly."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUPERVISOR = ROOT / "scripts" / "supervise.py"  # what scripts/run execs after bootstrap


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def embedded_env(tmp_path_factory):
    """The environment of a fresh checkout: no DATABASE_URL, no Redis, no test settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "EMAIL_HOST", "BREAKGLASS_ENV"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="breakglass.project.settings",
        BREAKGLASS_DATA_DIR=str(tmp_path_factory.mktemp("run-data")),
    )
    return env


def _run(env, *args, port):
    return subprocess.run(
        [sys.executable, str(SUPERVISOR), *args],
        cwd=ROOT,
        env={**env, "PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_run_command_starts_console_worker_and_scheduler_then_stops(embedded_env):
    port = _free_port()
    result = _run(embedded_env, "--smoke", "--verbose", port=port)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert f"Breakglass is running: http://127.0.0.1:{port}/" in output
    # Printed by the supervisor itself once it got a 200: runserver's own access-log line
    # can be cut off by the stop that follows at once, so it is not what we check.
    assert f"GET http://127.0.0.1:{port}/accounts/login/ -> 200" in output
    # --verbose brings every log line back: Celery's own, at INFO.
    assert "[worker]" in output and " ready." in output
    assert "beat: Starting" in output
    assert f"[probe] breakglass serve: dns on 127.0.0.1:{port + 1}" in output
    assert "demo_otp USERNAME" in output
    assert (Path(embedded_env["BREAKGLASS_DATA_DIR"]) / "breakglass.sqlite3").exists()
    # Recorded for management commands run by hand later (the settings read it).
    recorded = Path(embedded_env["BREAKGLASS_DATA_DIR"]) / "base-url"
    assert recorded.read_text() == f"http://127.0.0.1:{port}\n"


def test_the_run_command_fails_loudly_when_a_process_dies(embedded_env):
    port = _free_port()
    with socket.socket() as squatter:  # the console cannot bind its port
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = _run(embedded_env, "--smoke", "--no-seed", port=port)
    assert result.returncode == 1
    assert "ERROR: web exited with status" in result.stderr


def test_the_run_command_restarts_a_worker_that_was_killed(embedded_env, tmp_path):
    import re
    import signal
    import time

    port = _free_port()
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(SUPERVISOR), "--no-seed"],
            cwd=ROOT,
            env={**embedded_env, "PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_for_log(predicate, what):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            text = log_path.read_text(errors="replace")
            if predicate(text):
                return text
            assert proc.poll() is None, f"the supervisor exited while waiting for {what}:\n{text}"
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}:\n{log_path.read_text()[-4000:]}")

    try:
        text = wait_for_log(lambda t: "Breakglass is running" in t, "everything to start")
        [first_pid] = re.findall(r"==> worker started \(pid (\d+)\)", text)
        os.kill(int(first_pid), signal.SIGKILL)  # the OOM killer, say
        text = wait_for_log(
            lambda t: "==> worker is ready again" in t,
            "the worker to be restarted and ready again",
        )
        assert len(re.findall(r"==> worker started", text)) == 2
        assert "==> worker exited with status -9" in text
        assert "restarting in 1s" in text
        assert proc.poll() is None  # web and beat kept running throughout
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0


def test_the_running_terminal_is_quiet_and_says_what_happens(embedded_env, tmp_path):
    """By default the terminal shows what a person needs (URL, users, credentials, the
    code, how to stop) and then only warnings and errors: no scheduler line every few
    seconds, no task lines, no transport warnings. Shown by letting the scheduler and the
    worker do real work: an e-mail queued with no broker behind it is delivered by the
    outbox sweep that beat sends every 30 seconds."""
    import signal
    import sqlite3
    import time

    port = _free_port()
    data_dir = Path(embedded_env["BREAKGLASS_DATA_DIR"])
    log_path = tmp_path / "run.log"
    env = {key: value for key, value in embedded_env.items() if key != "LOG_LEVEL"}
    env.pop("BREAKGLASS_RUN_VERBOSE", None)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(SUPERVISOR)],
            cwd=ROOT,
            env={**env, "PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_for(predicate, what):
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if predicate():
                return
            assert proc.poll() is None, f"the supervisor exited while waiting for {what}"
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}:\n{log_path.read_text()[-4000:]}")

    def delivered() -> bool:
        with sqlite3.connect(data_dir / "breakglass.sqlite3", timeout=10) as db:
            row = db.execute(
                "SELECT state FROM outbox_outboxmessage WHERE idempotency_key = ?",
                ("quiet-run-check",),
            ).fetchone()
        return row is not None and row[0] == "delivered"

    try:
        wait_for(lambda: "Breakglass is running" in log_path.read_text(), "everything to start")
        # Queued from another process whose broker is an in-memory one nobody reads: only
        # the sweep can deliver it.
        queued = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", QUEUE_AN_EMAIL],
            cwd=ROOT,
            env={**env, "CELERY_BROKER_URL": "memory://"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert queued.returncode == 0, queued.stderr
        wait_for(delivered, "beat's sweep and the worker to deliver the e-mail")
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = log_path.read_text()
    banner = output[output.index("==> Breakglass is running") :]
    assert f"http://127.0.0.1:{port}/" in banner
    assert "rita, ravi, nora (responder); alex, bea, carl (approver)" in banner
    assert str(data_dir / "demo-credentials.txt") in banner
    assert ".venv/bin/python manage.py demo_otp USERNAME" in banner
    assert "Ctrl-C stops them all" in banner and "--verbose" in banner
    for noise in (
        "Sending due task",  # beat, every 10 to 30 seconds
        "beat: Starting",
        " received",  # the worker's task lines
        " succeeded in ",
        "No hostname was supplied",  # kombu's transport warning
        "Applying ",  # migrate
        "Starting development server",
        '"GET /accounts/login/ HTTP/1.1" 200',
        "System check identified",
    ):
        assert noise not in output, f"{noise!r} in:\n{output}"
    assert not [line for line in output.splitlines() if line.startswith("[beat]")], output


QUEUE_AN_EMAIL = """
from django.db import transaction
from breakglass.outbox.services import email_enqueue
with transaction.atomic():
    email_enqueue(to="quiet@example.test", subject="Quiet", body="Delivered.", key="quiet-run-check")
"""
