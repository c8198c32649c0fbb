"""A real OpenSSH server on loopback, configured exactly as docs/integrations/ssh-certificates.md
tells operators to configure theirs, and the real `ssh` client to log in to it.

    def test_it(sshd):                      # the fixture, from tests/integrations/conftest.py
        server = sshd.start(path="bastion-ssh", principals=["bg-bastion-ssh"])
        result = server.login(key=..., certificate=...)

`SSHD_CONFIG` is the one source of the configuration: the tests render it with private
paths and a free port; `tests/integrations/test_sshd_certificates.py` checks that the
documentation shows it rendered with the production values, so the two cannot drift.
The trust files (`<dir>/ssh/<path>/ca.pub`, `revoked.krl`) are what `breakglass sync
--dir <dir>` installs; the fixture stops sshd and deletes its throwaway user afterwards.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integrations.hosts import free_port, require_program, stop, wait_for_port

SSHD = "/usr/sbin/sshd"

SSHD_CONFIG = """\
# sshd_config for hosts of the Breakglass SSH {what}
Port {port}
ListenAddress {listen}
HostKey {host_key}
PidFile {pid_file}
UsePAM no
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
# Only certificates from the path's CA: no authorized_keys files for anyone.
AuthorizedKeysFile none
TrustedUserCAKeys {trusted_ca_keys}
RevokedKeys {revoked_keys}
# Which principals may log in as which local account: one file per account.
AuthorizedPrincipalsFile {principals_dir}/%u
# Logs the certificate's key ID (it names the grant) with every login.
LogLevel VERBOSE
"""


def trust_files(directory, paths: list[str]) -> dict[str, str]:
    """Where `breakglass sync --dir DIRECTORY --ssh-path ...` puts what sshd reads: the
    path's own files for one path, the combined files for a host of several paths."""
    if len(paths) == 1:
        return {
            "what": f"path {paths[0]}",
            "trusted_ca_keys": f"{directory}/ssh/{paths[0]}/ca.pub",
            "revoked_keys": f"{directory}/ssh/{paths[0]}/revoked.krl",
        }
    return {
        "what": f"paths {', '.join(paths)}",
        "trusted_ca_keys": f"{directory}/ssh/trusted_user_ca_keys",
        "revoked_keys": f"{directory}/ssh/revoked_keys.krl",
    }


_HOST = {
    "port": 22,
    "listen": "0.0.0.0",
    "host_key": "/etc/ssh/ssh_host_ed25519_key",
    "pid_file": "/run/sshd.pid",
    "principals_dir": "/etc/ssh/breakglass-principals",
}
# The values the documentation renders SSHD_CONFIG with: one path, and a host of two.
PRODUCTION = {**_HOST, **trust_files("/etc/breakglass", ["bastion-ssh"])}
PRODUCTION_MULTI = {
    **_HOST,
    **trust_files("/etc/breakglass", ["bastion-ssh", "database-admin-ssh"]),
}


def _secure_dir() -> Path:
    """A folder sshd's StrictModes accepts: every component root-owned and not writable
    by group or others (so not under /tmp), readable by the test user."""
    base = Path("/run") if Path("/run").is_dir() else Path("/var/lib")
    folder = Path(tempfile.mkdtemp(prefix="breakglass-sshd-", dir=base))
    folder.chmod(0o755)
    return folder


@dataclass
class LoginResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def accepted(self) -> bool:
        return self.returncode == 0


class SshServer:
    def __init__(self, *, root: Path, paths: list[str], user: str, principals: list[str]):
        self.root = root
        self.paths = paths
        self.path = paths[0]
        self.user = user
        self.port = free_port()
        self.trust_dir = root / "etc-breakglass"  # what `breakglass sync --dir` fills
        self.principals_dir = root / "principals"
        self.host_key = root / "ssh_host_ed25519_key"
        self.log = root / "sshd.log"
        self.config_file = root / "sshd_config"
        self.known_hosts = root / "known_hosts"
        self.principals_dir.mkdir(mode=0o755)
        (self.principals_dir / user).write_text("\n".join(principals) + "\n")
        (self.principals_dir / user).chmod(0o644)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)], check=True
        )
        host_public = (root / "ssh_host_ed25519_key.pub").read_text().split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {' '.join(host_public)}\n")
        self.config = SSHD_CONFIG.format(
            port=self.port,
            listen="127.0.0.1",
            host_key=self.host_key,
            pid_file=root / "sshd.pid",
            principals_dir=self.principals_dir,
            **trust_files(self.trust_dir, paths),
        )
        self.config_file.write_text(self.config)
        self.process: subprocess.Popen | None = None

    def start(self) -> SshServer:
        check = subprocess.run(
            [SSHD, "-t", "-f", str(self.config_file)], capture_output=True, text=True
        )
        assert check.returncode == 0, (
            f"sshd -t refused the documented configuration: {check.stderr}"
        )
        self._log_handle = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config_file)],
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(self.port, process=self.process)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {self.log.read_text()}") from None
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
        if getattr(self, "_log_handle", None):
            self._log_handle.close()

    def login(self, *, key: Path, certificate: str, command: str = "id -un") -> LoginResult:
        """`ssh -i key -o CertificateFile=...` with BatchMode, as the grant page tells."""
        cert_file = key.with_name(key.name + "-cert.pub")
        cert_file.write_text(certificate.strip() + "\n")
        result = subprocess.run(
            [
                "ssh",
                "-F", "/dev/null",
                "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes",
                "-o", "IdentityAgent=none",
                "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes",
                "-o", "ConnectTimeout=10",
                "-i", str(key),
                "-o", f"CertificateFile={cert_file}",
                "-p", str(self.port),
                f"{self.user}@127.0.0.1",
                command,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        return LoginResult(result.returncode, result.stdout, result.stderr)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def client_key(folder: Path, name: str = "id_ed25519") -> tuple[Path, str]:
    """A responder's key pair made by ssh-keygen: (private key file, public key line)."""
    key = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key, (folder / f"{name}.pub").read_text().strip()


class SshdFactory:
    def __init__(self) -> None:
        self.servers: list[SshServer] = []
        self.users: list[str] = []
        self.roots: list[Path] = []

    def start(
        self, *, path: str | None = None, paths: list[str] | None = None, principals: list[str]
    ) -> SshServer:
        """An sshd for one SSH path (its own files) or several (the combined files)."""
        paths = paths or [path]
        user = f"bgt{secrets.token_hex(4)}"
        # A throwaway account: '*' as its password hash is "no password" without being
        # "locked" ('!'), which sshd refuses outright when UsePAM is off.
        subprocess.run(
            ["useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/sh",
             "--password", "*", user],
            check=True, capture_output=True,
        )  # fmt: skip
        self.users.append(user)
        root = _secure_dir()
        self.roots.append(root)
        server = SshServer(root=root, paths=paths, user=user, principals=principals)
        self.servers.append(server)
        return server.start()

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        for user in self.users:
            subprocess.run(["userdel", "--force", user], capture_output=True)
        for root in self.roots:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def sshd():
    """Start real sshd servers (`sshd.start(...)`); all stopped, and their throwaway
    users deleted, when the test ends."""
    require_program(SSHD, "openssh-server")
    require_program("/usr/bin/ssh", "openssh-client")
    if os.geteuid() != 0:
        pytest.skip("sshd must run as root to switch to the test user")
    factory = SshdFactory()
    try:
        yield factory
    finally:
        factory.close()
