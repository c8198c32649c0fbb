"""Run Breakglass's processes together (web console, Celery worker, Celery beat, and the
demo's drill probe target: `manage.py serve_drill_probe` on PORT+1 or PROBE_PORT).

Started by `scripts/run`. Standard library only. Quiet by default: once everything is up,
a banner says where and how to log in and how to stop; then the children log warnings and
errors only, and only their standard error (logs, warnings, tracebacks) is shown, with a
prefix, not their standard output (banners, the dev server's notices). `--verbose` or
BREAKGLASS_RUN_VERBOSE=1 shows everything, at INFO.

A child that dies is restarted after a back-off (1 s doubling to 30 s; back to 1 s
once it has run for a minute), so a worker killed by the OOM killer or a crash comes
back; a child that keeps dying within seconds of starting (5 times in a row: a broken
setup, not bad luck) stops everything with exit status 1. `--smoke` starts everything,
waits until the console answers, the worker is ready and beat has started, then stops
cleanly (exit 0); in smoke mode any death fails the run at once.
"""

from __future__ import annotations

import argparse
import json
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
# Printed by breakglass.project.celery at any log level (the supervisor waits for them).
WORKER_READY = "breakglass: worker ready"
BEAT_READY = "breakglass: scheduler started"
# As breakglass.access.demo_data.DEMO_OTP_COMMAND spells it (tests check they agree).
DEMO_OTP_COMMAND = ".venv/bin/python manage.py demo_otp USERNAME"


class Child:
    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        ready_marker: str | None,
        *,
        show_stdout: bool,
    ):
        self.name = name
        self.argv, self.env = argv, env
        self.ready_marker = ready_marker
        self.show_stdout = show_stdout
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
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            bufsize=1,
            # Own process group: Ctrl-C reaches only us, and we stop the children in order.
            start_new_session=True,
        )
        print(f"==> {self.name} started (pid {self.proc.pid})", flush=True)
        self._pump_threads = [
            threading.Thread(target=self._pump, args=(stream, self.ready, shown), daemon=True)
            for stream, shown in ((self.proc.stdout, self.show_stdout), (self.proc.stderr, True))
        ]
        for thread in self._pump_threads:
            thread.start()

    def _pump(self, stream, ready: threading.Event, shown: bool) -> None:
        for line in stream:
            if shown:
                sys.stdout.write(f"[{self.name}] {line}")
                sys.stdout.flush()
            if self.ready_marker and self.ready_marker in line and not ready.is_set():
                ready.set()
                if self.restarts:
                    print(f"==> {self.name} is ready again", flush=True)

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
        for thread in self._pump_threads:
            thread.join(timeout=5)


def _manage(*args: str, env: dict[str, str], quiet: bool = False) -> int:
    """Run a management command; quiet, its output is shown only if it fails."""
    if not quiet:
        return subprocess.call([PYTHON, "manage.py", *args], cwd=ROOT, env=env)
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
    return result.returncode


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
    data_dir = data_dir_of(env)
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / "base-url"
    tmp = target.with_name(".base-url.tmp")
    tmp.unlink(missing_ok=True)
    # 0600 like every file in the data folder: its system check (W001) flags the rest.
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(env["BREAKGLASS_BASE_URL"].rstrip("/") + "\n")
    os.replace(tmp, target)


def data_dir_of(env: dict[str, str]) -> Path:
    return Path(env.get("BREAKGLASS_DATA_DIR") or ROOT / "data")


def demo_people(data_dir: Path) -> str:
    """The demo's people by role, from the seed's credentials file: "rita, ravi, nora
    (responder); alex, bea, carl (approver); ...", or "" when there is none (no seed)."""
    try:
        entries = json.loads((data_dir / "demo-credentials.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    groups: list[tuple[str, list[str]]] = []
    for username, entry in entries.items():
        if username.startswith("_") or not isinstance(entry, dict):
            continue
        role = "/".join(entry.get("roles") or ["no role"])
        if groups and groups[-1][0] == role:
            groups[-1][1].append(username)
        else:
            groups.append((role, [username]))
    return "; ".join(f"{', '.join(names)} ({role})" for role, names in groups)


def running_banner(*, base_url: str, data_dir: Path, probe_port: str, verbose: bool) -> str:
    """What a person needs once everything is up: where, who, the code, how to stop."""
    people = demo_people(data_dir)
    login = (
        f"    Log in as: {people}\n"
        f"    Passwords, TOTP secrets and backup codes: {data_dir / 'demo-credentials.txt'}\n"
        f"    The 6-digit code, typed in this folder: {DEMO_OTP_COMMAND}\n"
        if people
        else "    No demo users (the seed step was skipped).\n"
    )
    logs = (
        "    Showing every log line (--verbose).\n"
        if verbose
        else "    Showing warnings and errors only: `scripts/run --verbose` (or\n"
        "    BREAKGLASS_RUN_VERBOSE=1) shows every log line.\n"
    )
    return (
        f"\n==> Breakglass is running: {base_url}/\n{login}"
        "    Web console, Celery worker, scheduler and the dns drill probe target\n"
        f"    (127.0.0.1:{probe_port}) are up.\n{logs}"
        "    Ctrl-C stops them all.\n"
    )


def child_commands(*, port: str, probe_port: str, verbose: bool) -> list[tuple]:
    """(name, argv, ready marker, show its standard output) for each child. Quiet, Celery
    logs at WARNING without its banner; the ready markers are the lines
    breakglass.project.celery prints whatever the log level."""
    level = "INFO" if verbose else "WARNING"
    celery = [PYTHON, "-m", "celery", "-A", "breakglass.project.celery"]
    if not verbose:
        celery.append("--quiet")
    return [
        # migrate has just run the system checks: once is enough.
        ("web", [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload",
                 "--skip-checks"], None, verbose),
        ("worker", [*celery, "worker", f"--loglevel={level}", "--concurrency=2",
                    # The embedded filesystem broker has no broadcast: no gossip/mingle/heartbeat.
                    "--without-gossip", "--without-mingle", "--without-heartbeat"],
         WORKER_READY, verbose),
        ("beat", [*celery, "beat", f"--loglevel={level}"], BEAT_READY, verbose),
        ("probe", [PYTHON, "manage.py", "serve_drill_probe", "--skip-checks", "--audience",
                   "dns", "--listen", f"127.0.0.1:{probe_port}"],
         "breakglass serve: dns on", verbose),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/run")
    parser.add_argument(
        "--smoke", action="store_true", help="start everything, check it is up, then stop"
    )
    parser.add_argument("--no-seed", action="store_true", help="skip `manage.py seed_demo`")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show every log line (also BREAKGLASS_RUN_VERBOSE=1); default: warnings and errors",
    )
    args = parser.parse_args(argv)

    env = dict(os.environ)
    verbose = args.verbose or env.get("BREAKGLASS_RUN_VERBOSE", "") not in ("", "0")
    env.setdefault("DJANGO_SETTINGS_MODULE", "breakglass.project.settings")
    env["PYTHONUNBUFFERED"] = "1"
    if not verbose:
        env.setdefault("LOG_LEVEL", "WARNING")  # the Django processes' root logger
    port = env.get("PORT", "8000")
    if not port.isdigit():
        print(f"PORT: expected a number, got {port!r}", file=sys.stderr)
        return 2
    base_url = f"http://127.0.0.1:{port}"
    # Links in e-mails and the seed's login hint point at this console. Recorded in the
    # data folder too, so management commands run by hand in another shell use it.
    env.setdefault("BREAKGLASS_BASE_URL", base_url)
    # The demo's drill probe target (a `breakglass serve --allow-drill` for dns), which
    # the seed names as dns-emergency-token's probe_url: drills present their token there.
    probe_port = env.get("PROBE_PORT", str(int(port) + 1))
    if not probe_port.isdigit():
        print(f"PROBE_PORT: expected a number, got {probe_port!r}", file=sys.stderr)
        return 2
    env.setdefault("DRILLS_DEMO_PROBE_URL", f"http://127.0.0.1:{probe_port}/")
    _record_base_url(env)

    print("==> migrating the database", flush=True)
    if _manage("migrate", "--noinput", *([] if verbose else ["-v", "0"]), env=env) != 0:
        print("migrate failed; nothing started", file=sys.stderr)
        return 1
    if not args.no_seed and env.get("BREAKGLASS_SEED", "1") != "0":
        if _has_command("seed_demo", env):
            print("==> seeding the demo organisation (idempotent)", flush=True)
            if _manage("seed_demo", "--skip-checks", env=env, quiet=not verbose) != 0:
                print("seed_demo failed; nothing started", file=sys.stderr)
                return 1
        else:
            print("==> no seed_demo command yet; starting with an empty organisation")

    stopping = threading.Event()

    def request_stop(signum, frame):
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    children = [
        Child(name, argv, env, marker, show_stdout=shown)
        for name, argv, marker, shown in child_commands(
            port=port, probe_port=probe_port, verbose=verbose
        )
    ]
    web = children[0]
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
                    running_banner(
                        base_url=base_url,
                        data_dir=data_dir_of(env),
                        probe_port=probe_port,
                        verbose=verbose,
                    ),
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
        print("==> stopping web, worker, beat and probe", flush=True)
        for child in children:
            child.stop()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in children:
            child.wait_or_kill(deadline)
    return status


if __name__ == "__main__":
    sys.exit(main())
