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
    result = _run(embedded_env, "--smoke", port=port)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert f"Breakglass is running: http://127.0.0.1:{port}/" in output
    # Printed by the supervisor itself once it got a 200: runserver's own access-log line
    # can be cut off by the stop that follows at once, so it is not what we check.
    assert f"GET http://127.0.0.1:{port}/accounts/login/ -> 200" in output
    assert "[worker]" in output and " ready." in output
    assert "beat: Starting" in output
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
            lambda t: len(re.findall(r"==> worker started", t)) == 2 and t.count(" ready.") == 2,
            "the worker to be restarted and ready again",
        )
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
