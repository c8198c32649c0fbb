"""Helpers for tests that run the verifier on real host programs (sshd, nginx, Linux-PAM).

Each program binds 127.0.0.1 on a free port, keeps its configuration, logs and pid in a
temporary directory and is stopped by the fixture that started it. The trust documents are
made with `devkit.keykit`'s fixed keys but around the real clock, because sshd and nginx
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

from devkit import keykit as kit
from tests import services

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


REPOSITORY = Path(__file__).resolve().parents[2]
INTEGRATION_DOCS = REPOSITORY / "docs" / "integrations"


def documented_block(page: str, language: str) -> str:
    """The first fenced block of `language` in docs/integrations/<page>: the configuration
    the tests run is the one the docs show, read from the docs themselves."""
    text = (INTEGRATION_DOCS / page).read_text(encoding="utf-8")
    opening = f"```{language}\n"
    start = text.index(opening) + len(opening)
    return text[start : text.index("```", start)]


def rewritten(text: str, replacements: dict[str, str]) -> str:
    """`text` with each documented path or name replaced; every one must occur (so the
    test notices when the docs change under it)."""
    for old, new in replacements.items():
        assert old in text, f"{old!r} not found: the documented configuration changed"
        text = text.replace(old, new)
    return text


def private_root_directory(prefix: str) -> Path:
    """A directory whose every ancestor is root-owned and not group/world-writable, as sshd
    requires for AuthorizedKeysCommand (it refuses anything under the sticky /tmp)."""
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix=prefix, dir="/run"))
    directory.chmod(0o755)
    return directory


class Sshd:
    """A private OpenSSH server on a free loopback port: `Sshd(directory, config_lines)`.

    The base configuration (port, host key, pid file, public keys only, no PAM) comes first;
    `config_lines` (e.g. a documented block with `Match`) are appended verbatim. Use it as a
    context manager; `ssh(user, key, command)` runs the real client against it.
    """

    def __init__(self, directory: Path, config_lines: list[str]):
        self.sshd = require_program("/usr/sbin/sshd", "openssh-server")
        self.directory = directory
        self.port = free_port()
        host_key = directory / "host_ed25519"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True
        )
        base = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {host_key}",
            f"PidFile {directory / 'sshd.pid'}",
            "AuthorizedKeysFile none",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "PermitRootLogin no",
        ]
        self.config = directory / "sshd_config"
        self.config.write_text("\n".join([*base, *config_lines]) + "\n")
        self.log = directory / "sshd.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Sshd:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
        check = subprocess.run([self.sshd, "-t", "-f", str(self.config)], capture_output=True)
        assert check.returncode == 0, check.stderr.decode()
        self.process = subprocess.Popen(
            [self.sshd, "-D", "-e", "-f", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
        )
        wait_for_port(self.port, process=self.process)
        return self

    def __exit__(self, *exc_info) -> None:
        if self.process is not None:
            stop(self.process)

    def client_key(self, name: str = "client") -> Path:
        key = self.directory / name
        if not key.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
            )
        return key

    def ssh(self, user: str, command: str, *, key: Path | None = None, stdin: str = ""):
        key = key or self.client_key()
        return subprocess.run(
            [
                "ssh", "-F", "/dev/null", "-p", str(self.port), "-i", str(key),
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20",
                f"{user}@127.0.0.1", command,
            ],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip


class HostAccount:
    """A temporary local account (useradd), removed afterwards; password '*' (none, and
    not 'locked' in sshd's eyes, unlike useradd's default '!')."""

    def __init__(self, home_parent: Path):
        self.name = f"bgt{os.urandom(4).hex()}"
        self.home = home_parent / self.name
        subprocess.run(
            ["useradd", "-m", "-d", str(self.home), "-s", "/bin/sh", "-p", "*", self.name],
            check=True,
            capture_output=True,
        )

    def remove(self) -> None:
        subprocess.run(["userdel", "-r", "-f", self.name], capture_output=True)
