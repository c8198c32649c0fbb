"""Run Breakglass's three processes together (web console, Celery worker, Celery beat).

Started by `scripts/run`. Standard library only. Each child's output is shown with a
prefix. A child that dies is restarted after a back-off (1 s doubling to 30 s; back to 1 s
once it has run for a minute), so a worker killed by the OOM killer or a crash comes
back; a child that keeps dying within seconds of starting (5 times in a row: a broken
setup, not bad luck) stops everything with exit status 1. `--smoke` starts everything,
waits until the console answers, the worker is ready and beat has started, then stops
cleanly (exit 0); in smoke mode any death fails the run at once.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
STOP_GRACE_SECONDS = 15
RESTART_BACKOFF_MAX = 30.0
QUICK_DEATH_SECONDS = 10.0  # dying sooner than this after starting counts as a quick death
QUICK_DEATHS_LIMIT = 5
STABLE_SECONDS = 60.0  # running this long resets the back-off


class Child:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], ready_marker: str | None):
        self.name = name
        self.argv, self.env = argv, env
        self.ready_marker = ready_marker
        self.ready = threading.Event()
        self.restarts = 0
        self.quick_deaths = 0
        self.backoff = 1.0
        self.restart_at: float | None = None
        self.start()

    def start(self) -> None:
        self.ready = threading.Event()
        self.started_at = time.monotonic()
        self.restart_at = None
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            # Own process group: Ctrl-C reaches only us, and we stop the children in order.
            start_new_session=True,
        )
        print(f"==> {self.name} started (pid {self.proc.pid})", flush=True)
        self._pump_thread = threading.Thread(
            target=self._pump, args=(self.proc, self.ready), daemon=True
        )
        self._pump_thread.start()

    def _pump(self, proc: subprocess.Popen, ready: threading.Event) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(f"[{self.name}] {line}")
            sys.stdout.flush()
            if self.ready_marker and self.ready_marker in line:
                ready.set()

    def died(self) -> bool:
        """Note the death and schedule a restart; False when it keeps dying at once."""
        now = time.monotonic()
        lived = now - self.started_at
        if lived >= STABLE_SECONDS:
            self.backoff = 1.0
        self.quick_deaths = self.quick_deaths + 1 if lived < QUICK_DEATH_SECONDS else 0
        try:  # what the dead leader left behind (a worker's pool processes)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.quick_deaths >= QUICK_DEATHS_LIMIT:
            return False
        self.restart_at = now + self.backoff
        print(
            f"==> {self.name} exited with status {self.proc.returncode} after {lived:.0f}s; "
            f"restarting in {self.backoff:.0f}s",
            file=sys.stderr,
            flush=True,
        )
        self.backoff = min(self.backoff * 2, RESTART_BACKOFF_MAX)
        return True

    def restart_if_due(self) -> None:
        if self.restart_at is not None and time.monotonic() >= self.restart_at:
            self.restarts += 1
            self.start()

    def stop(self) -> None:
        # SIGTERM to the main process only: a Celery worker then shuts its pool down
        # itself (warm shutdown); the whole group is killed only if that takes too long.
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                return

    def wait_or_kill(self, deadline: float) -> None:
        try:
            self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"==> {self.name} did not stop in time; killing it", flush=True)
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        # Relay whatever the child printed last (its final log lines, a shutdown error)
        # before we exit; bounded, in case a grandchild still holds the pipe open.
        self._pump_thread.join(timeout=5)


def _manage(*args: str, env: dict[str, str]) -> int:
    return subprocess.call([PYTHON, "manage.py", *args], cwd=ROOT, env=env)


def _has_command(name: str, env: dict[str, str]) -> bool:
    result = subprocess.run(
        [PYTHON, "manage.py", "help", "--commands"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    return name in result.stdout.split()


def _console_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL we built
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _record_base_url(env: dict[str, str]) -> None:
    """Write BREAKGLASS_BASE_URL to DATA_DIR/base-url (read by the settings when a
    process is started without BREAKGLASS_BASE_URL)."""
    data_dir = Path(env.get("BREAKGLASS_DATA_DIR") or ROOT / "data")
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / "base-url"
    tmp = target.with_name(".base-url.tmp")
    tmp.write_text(env["BREAKGLASS_BASE_URL"].rstrip("/") + "\n", encoding="utf-8")
    os.replace(tmp, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/run")
    parser.add_argument(
        "--smoke", action="store_true", help="start everything, check it is up, then stop"
    )
    parser.add_argument("--no-seed", action="store_true", help="skip `manage.py seed_demo`")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "breakglass.project.settings")
    env["PYTHONUNBUFFERED"] = "1"
    port = env.get("PORT", "8000")
    if not port.isdigit():
        print(f"PORT: expected a number, got {port!r}", file=sys.stderr)
        return 2
    base_url = f"http://127.0.0.1:{port}"
    # Links in e-mails and the seed's login hint point at this console. Recorded in the
    # data folder too, so management commands run by hand in another shell use it.
    env.setdefault("BREAKGLASS_BASE_URL", base_url)
    _record_base_url(env)

    print("==> migrating the database", flush=True)
    if _manage("migrate", "--noinput", env=env) != 0:
        print("migrate failed; nothing started", file=sys.stderr)
        return 1
    if not args.no_seed and env.get("BREAKGLASS_SEED", "1") != "0":
        if _has_command("seed_demo", env):
            print("==> seeding the demo organisation (idempotent)", flush=True)
            if _manage("seed_demo", env=env) != 0:
                print("seed_demo failed; nothing started", file=sys.stderr)
                return 1
        else:
            print("==> no seed_demo command yet; starting with an empty organisation")

    stopping = threading.Event()

    def request_stop(signum, frame):
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    celery = [PYTHON, "-m", "celery", "-A", "breakglass.project.celery"]
    children = [
        Child(
            "web",
            [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            env,
            None,
        ),
        Child(
            "worker",
            [
                *celery,
                "worker",
                "--loglevel=INFO",
                "--concurrency=2",
                # The embedded filesystem broker has no broadcast: no gossip/mingle/heartbeat.
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            env,
            " ready.",
        ),
        Child("beat", [*celery, "beat", "--loglevel=INFO"], env, "beat: Starting"),
    ]
    web, worker, beat = children
    status = 0
    announced = False
    started = time.monotonic()
    try:
        while not stopping.is_set():
            dead = [
                child
                for child in children
                if child.restart_at is None and child.proc.poll() is not None
            ]
            given_up = [child for child in dead if args.smoke or not child.died()]
            if given_up:
                for child in given_up:
                    print(
                        f"==> ERROR: {child.name} exited with status {child.proc.returncode}"
                        + ("" if args.smoke else f", {QUICK_DEATHS_LIMIT} times in a row")
                        + "; stopping the others",
                        file=sys.stderr,
                        flush=True,
                    )
                status = 1
                break
            for child in children:
                child.restart_if_due()
            if not web.ready.is_set() and _console_answers(f"{base_url}/accounts/login/"):
                print(f"==> the console answers: GET {base_url}/accounts/login/ -> 200", flush=True)
                web.ready.set()
            if not announced and all(child.ready.is_set() for child in children):
                announced = True
                print(
                    "\n"
                    f"==> Breakglass is running: {base_url}/\n"
                    "    Log in as a demo user: passwords are in the credentials file named\n"
                    "    above; the 6-digit code comes from\n"
                    "    `.venv/bin/python manage.py demo_otp USERNAME`.\n"
                    "    Web console, Celery worker and scheduler are up. Ctrl-C stops all three.\n",
                    flush=True,
                )
                if args.smoke:
                    print("==> smoke check passed; stopping", flush=True)
                    break
            if args.smoke and not announced and time.monotonic() - started > 180:
                waiting = [child.name for child in children if not child.ready.is_set()]
                print(f"==> ERROR: not ready after 180s: {', '.join(waiting)}", file=sys.stderr)
                status = 1
                break
            stopping.wait(0.25)
    finally:
        print("==> stopping web, worker and beat", flush=True)
        for child in children:
            child.stop()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in children:
            child.wait_or_kill(deadline)
    return status


if __name__ == "__main__":
    sys.exit(main())
