"""The SSH token gate (docs/integrations/ssh-gate.md) behind a real OpenSSH server.

sshd runs the documented `Match` block, the AuthorizedKeysCommand runs as `nobody`, the gate
calls its check through real sudo with the documented sudoers line, and the check runs the
single-file verifier under Debian's python3 against a root-owned state directory.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

import pytest

from tests.integrations.hosts import (
    INTEGRATION_DOCS,
    HostAccount,
    documented_block,
    private_root_directory,
    require_program,
    rewritten,
)
from tests.integrations.sshd import Sshd, client_key

SCRIPTS = INTEGRATION_DOCS / "ssh"
LOGGED_IN = "echo LOGGED-IN-AS $(id -un)"


class GateHost:
    """One host: /etc/breakglass, /var/lib/breakglass and /usr/local/libexec moved into a
    private directory, the documented configuration pointing at them."""

    def __init__(self, root: Path, verifier_command: list[str], account: HostAccount):
        self.root, self.account = root, account
        self.conf, self.state = root / "etc-breakglass", root / "var-lib-breakglass"
        libexec = root / "libexec"
        libexec.mkdir(mode=0o755)
        self.state.mkdir(mode=0o700)
        verifier = shlex.join(verifier_command)
        scripts = {
            "breakglass-authorized-keys": {
                "ACCOUNT=breakglass": f"ACCOUNT={account.name}",
                "/usr/local/libexec/": f"{libexec}/",
            },
            "breakglass-gate": {"/usr/local/libexec/": f"{libexec}/"},
            "breakglass-gate-check": {
                '"/usr/bin/python3 /usr/local/lib/breakglass-verifier.pyz"': f'"{verifier}"',
                "CONF=/etc/breakglass": f"CONF={self.conf}",
                "STATE=/var/lib/breakglass": f"STATE={self.state}",
            },
        }
        self.check = libexec / "breakglass-gate-check"
        for name, replacements in scripts.items():
            target = libexec / name
            target.write_text(rewritten((SCRIPTS / name).read_text(), replacements))
            target.chmod(0o755)
        self.sshd_lines = rewritten(
            documented_block("ssh-gate.md", "sshd_config"),
            {
                "/usr/local/libexec/": f"{libexec}/",
                "Match User breakglass": f"Match User {account.name}",
            },
        ).splitlines()
        self.sudoers_line = rewritten(
            documented_block("ssh-gate.md", "sudoers"),
            {"/usr/local/libexec/": f"{libexec}/", "breakglass ALL=": f"{account.name} ALL="},
        )

    def install_trust(self, trust, **bundle) -> None:
        trust.install(self.conf, **bundle)
        self.conf.chmod(0o755)


@pytest.fixture
def gate_host(verifier_command, live_trust):
    require_program("/usr/bin/sudo", "sudo")
    require_program("/usr/sbin/useradd", "passwd")
    root = private_root_directory("breakglass-gate-")
    account = HostAccount(root)
    sudoers = Path(f"/etc/sudoers.d/breakglass-test-{account.name}")  # no dot: sudo skips those
    try:
        host = GateHost(root, verifier_command, account)
        host.install_trust(live_trust)
        sudoers.write_text(host.sudoers_line)
        sudoers.chmod(0o440)
        host.key, _ = client_key(root, "client")
        sshd = Sshd(root)
        with sshd.start("\n".join([*sshd.base_config(), *host.sshd_lines]) + "\n"):
            host.sshd = sshd
            yield host
    finally:
        sudoers.unlink(missing_ok=True)
        account.remove()
        shutil.rmtree(root, ignore_errors=True)


def login(host: GateHost, token: str, shell_input: str = LOGGED_IN):
    return host.sshd.ssh(host.account.name, token, key=host.key, stdin=shell_input + "\nexit\n")


def test_a_token_logs_in_once_and_its_replay_is_refused(gate_host, live_trust):
    token = live_trust.token(jti="gate-once-0001")
    first = login(gate_host, token)
    assert first.returncode == 0, first.stderr
    assert f"LOGGED-IN-AS {gate_host.account.name}" in first.stdout
    assert "ACCEPT token for sso" in first.stderr
    replay = login(gate_host, token)
    assert replay.returncode != 0
    assert "LOGGED-IN-AS" not in replay.stdout
    assert "REJECT replayed" in replay.stderr


def test_the_shell_cannot_reset_single_use(gate_host, live_trust):
    token = live_trust.token(jti="gate-reset-0001")
    state = gate_host.state
    attack = f"rm -f {state}/replay.json; ls {state} && echo STATE-READABLE"
    first = login(gate_host, token, attack)
    assert "ACCEPT token for sso" in first.stderr  # the shell started...
    assert "Permission denied" in first.stderr  # ...and could not touch the state
    assert "STATE-READABLE" not in first.stdout
    assert (state / "replay.json").exists()
    assert "REJECT replayed" in login(gate_host, token).stderr


def test_a_key_is_forced_into_the_gate_and_needs_a_token(gate_host, live_trust):
    assert "LOGGED-IN-AS" not in login(gate_host, "").stdout
    assert "pass your token as the command" in login(gate_host, "").stderr
    refused = login(gate_host, live_trust.token(aud="vpn", jti="gate-aud-0001"))
    assert "REJECT wrong_audience" in refused.stderr and "LOGGED-IN-AS" not in refused.stdout


def test_a_drill_token_is_refused_by_the_gate(gate_host, live_trust):
    refused = login(gate_host, live_trust.token(drill=True, jti="gate-drill-0001"))
    assert "REJECT drill_not_allowed" in refused.stderr
    assert "LOGGED-IN-AS" not in refused.stdout


def test_the_check_takes_no_arguments_through_sudo(gate_host, live_trust):
    """sudoers' "" means no arguments: the account cannot point the check at its own state."""
    own = f"{gate_host.account.home}/state"
    attempt = f"sudo -n {gate_host.check} --state {own} </dev/null; echo SUDO-EXIT=$?"
    session = login(gate_host, live_trust.token(jti="gate-args-0001"), attempt)
    assert "ACCEPT token for sso" in session.stderr
    assert "SUDO-EXIT=1" in session.stdout
    assert "password is required" in session.stderr


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda state: state.chmod(0o777), "is group- or world-writable (mode 0777)"),
        (lambda state: state.chmod(0o770), "is group- or world-writable (mode 0770)"),
        (lambda state: os.chown(state, 65534, 65534), "is owned by uid 65534, not by root"),
    ],
)
def test_an_insecure_state_directory_refuses_the_login_and_says_why(
    gate_host, live_trust, spoil, message
):
    spoil(gate_host.state)
    refused = login(gate_host, live_trust.token(jti="gate-state-0001"))
    assert refused.returncode != 0
    assert "LOGGED-IN-AS" not in refused.stdout
    assert message in refused.stderr
    assert "Traceback" not in refused.stderr
