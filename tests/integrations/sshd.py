"""Real OpenSSH servers on loopback, and the real `ssh` client: the one sshd helper.

`Sshd` runs sshd with a whole configuration in a private folder (the SSH token gate adds
its documented `Match` block to `base_config()`, tests/integrations/test_ssh_gate.py).
`CertificateHost` is a host of SSH paths configured exactly as
docs/integrations/ssh-certificates.md tells operators to configure theirs:

    def test_it(sshd):                      # the fixture, from tests/integrations/conftest.py
        server = sshd.start(path="bastion-ssh", principals=["bg-bastion-ssh"])
        result = server.login(key=..., certificate=...)

`SSHD_CONFIG` is the one source of that configuration: the tests render it with private
paths and a free port; `tests/integrations/test_sshd_certificates.py` checks that the
documentation shows it rendered with the production values, so the two cannot drift.
The trust files (`<dir>/ssh/<path>/ca.pub`, `revoked.krl`) are what `breakglass sync
--dir <dir>` installs; the fixture stops sshd and deletes its throwaway user afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integrations.hosts import (
    HostAccount,
    free_port,
    private_root_directory,
    require_program,
    stop,
    wait_for_port,
)

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


@dataclass
class LoginResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def accepted(self) -> bool:
        return self.returncode == 0


class Sshd:
    """A private OpenSSH server on a free loopback port, everything in `directory` (its
    host key, pid file, configuration and log): `with Sshd(directory).start(config):`,
    where `config` is the whole sshd_config text (`base_config()` gives the lines every
    test server shares). `ssh(...)` runs the real client against it."""

    def __init__(self, directory: Path):
        require_program(SSHD, "openssh-server")
        require_program("/usr/bin/ssh", "openssh-client")
        self.directory = directory
        self.port = free_port()
        self.host_key = directory / "ssh_host_ed25519_key"
        self.pid_file = directory / "sshd.pid"
        self.config_file = directory / "sshd_config"
        self.log = directory / "sshd.log"
        self.known_hosts = directory / "known_hosts"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)], check=True
        )
        host_public = Path(f"{self.host_key}.pub").read_text().split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {' '.join(host_public)}\n")
        self.process: subprocess.Popen | None = None

    def base_config(self) -> list[str]:
        """Loopback, this server's files, public keys only, no PAM, no root."""
        return [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            f"PidFile {self.pid_file}",
            "AuthorizedKeysFile none",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "PermitRootLogin no",
        ]

    def start(self, config: str) -> Sshd:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
        self.config_file.write_text(config)
        check = subprocess.run(
            [SSHD, "-t", "-f", str(self.config_file)], capture_output=True, text=True
        )
        assert check.returncode == 0, f"sshd -t refused the configuration: {check.stderr}"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.config_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(self.port, process=self.process)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {self.log_text()}") from None
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)

    def __enter__(self) -> Sshd:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def ssh(
        self, user: str, command: str, *, key: Path, certificate: Path | None = None, stdin=""
    ) -> LoginResult:
        """The real client, non-interactive, pinned to this server's host key."""
        result = subprocess.run(
            [
                "ssh",
                "-F", "/dev/null",
                "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes",
                "-o", "IdentityAgent=none",
                "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes",
                "-o", "ConnectTimeout=20",
                "-i", str(key),
                *(["-o", f"CertificateFile={certificate}"] if certificate else []),
                "-p", str(self.port),
                f"{user}@127.0.0.1",
                command,
            ],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        return LoginResult(result.returncode, result.stdout, result.stderr)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


class CertificateHost(Sshd):
    """A host of one SSH path (or several) configured exactly as documented
    (`SSHD_CONFIG`): its trust files are what `breakglass sync --dir trust_dir` installs,
    and `principals` may log in as `user`."""

    def __init__(self, *, root: Path, paths: list[str], user: str, principals: list[str]):
        super().__init__(root)
        self.paths = paths
        self.path = paths[0]
        self.user = user
        self.trust_dir = root / "etc-breakglass"  # what `breakglass sync --dir` fills
        self.principals_dir = root / "principals"
        self.principals_dir.mkdir(mode=0o755)
        (self.principals_dir / user).write_text("\n".join(principals) + "\n")
        (self.principals_dir / user).chmod(0o644)
        self.config = SSHD_CONFIG.format(
            port=self.port,
            listen="127.0.0.1",
            host_key=self.host_key,
            pid_file=self.pid_file,
            principals_dir=self.principals_dir,
            **trust_files(self.trust_dir, paths),
        )

    def login(self, *, key: Path, certificate: str, command: str = "id -un") -> LoginResult:
        """`ssh -i key -o CertificateFile=...`, as the grant page tells."""
        cert_file = key.with_name(key.name + "-cert.pub")
        cert_file.write_text(certificate.strip() + "\n")
        return self.ssh(self.user, command, key=key, certificate=cert_file)


def client_key(folder: Path, name: str = "id_ed25519") -> tuple[Path, str]:
    """A responder's key pair made by ssh-keygen: (private key file, public key line)."""
    key = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key, (folder / f"{name}.pub").read_text().strip()


class SshdFactory:
    def __init__(self) -> None:
        self.servers: list[CertificateHost] = []
        self.accounts: list[HostAccount] = []
        self.roots: list[Path] = []

    def start(
        self, *, path: str | None = None, paths: list[str] | None = None, principals: list[str]
    ) -> CertificateHost:
        """An sshd for one SSH path (its own files) or several (the combined files)."""
        account = HostAccount()
        self.accounts.append(account)
        root = private_root_directory("breakglass-sshd-")
        self.roots.append(root)
        server = CertificateHost(
            root=root, paths=paths or [path], user=account.name, principals=principals
        )
        self.servers.append(server)
        return server.start(server.config)

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        for account in self.accounts:
            account.remove()
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
