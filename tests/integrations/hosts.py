"""Helpers for tests that run the verifier on real host programs (sshd, nginx, Linux-PAM).

Each program binds 127.0.0.1 on a free port, keeps its configuration, logs and pid in a
temporary directory and is stopped by the fixture that started it. The trust documents are
made with `tests.verifier.kit`'s fixed keys but around the real clock, because sshd and nginx
run the verifier with the real time.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests import services
from tests.verifier import kit

SYSTEM_PYTHON = "/usr/bin/python3"
HOUR = 3600


def require_program(path: str, package: str) -> str:
    """The program's path; outside CI a missing program skips the test, in CI it fails."""
    found = path if os.path.exists(path) else shutil.which(os.path.basename(path))
    if found:
        return found
    reason = f"{path} not found (apt-get install {package})"
    if services.in_ci():
        pytest.fail(f"CI must provide this program: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, *, process: subprocess.Popen | None = None, timeout=20.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port (or the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class LiveTrust:
    """Roots, bundles and tokens from the test kit's keys, valid around the real clock."""

    def __init__(self, *, now: int | None = None):
        self.now = int(time.time()) if now is None else now

    def roots(self) -> bytes:
        return kit.dumps(kit.roots())

    def bundle(self, *, version: int = 7, revoked_jti=(), **overrides) -> bytes:
        now = self.now
        document = kit.bundle(
            version=version,
            issued_at=now - 60,
            expires_at=now + 24 * HOUR,
            keys=[kit.key_entry(not_before=now - 30 * 24 * HOUR, not_after=now + 30 * 24 * HOUR)],
            revoked_jti=[{"jti": jti, "exp": now + 2 * HOUR} for jti in revoked_jti],
            **overrides,
        )
        return kit.dumps(document)

    def token(self, **overrides) -> str:
        now = self.now
        overrides.setdefault("iat", now - 30)
        overrides.setdefault("nbf", now - 30)
        overrides.setdefault("exp", now + HOUR)
        return kit.token(**overrides)

    def install(self, directory: Path, *, audience: str = kit.AUDIENCE, **bundle) -> Path:
        """Write roots.json, bundle.json and audience into `directory` (like /etc/breakglass)."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "roots.json").write_bytes(self.roots())
        (directory / "bundle.json").write_bytes(self.bundle(**bundle))
        (directory / "audience").write_text(audience + "\n")
        for name in ("roots.json", "bundle.json", "audience"):
            (directory / name).chmod(0o644)
        return directory
