"""The AuthorizedKeysCommand shipped in docs/integrations/ssh, run as sshd would run it.

The whole gate (sshd, sudo, the check, the single-file verifier) runs against a real sshd in
tests/integrations/test_ssh_gate.py.
"""

import subprocess
from pathlib import Path

HOOKS = Path(__file__).resolve().parents[2] / "docs" / "integrations" / "ssh"


def test_authorized_keys_command_forces_the_gate_for_the_breakglass_account_only():
    def run(*args):
        return subprocess.run(
            [str(HOOKS / "breakglass-authorized-keys"), *args], capture_output=True, text=True
        )

    line = run("breakglass", "ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIB").stdout
    assert line.startswith('restrict,pty,command="/usr/local/libexec/breakglass-gate" ssh-ed25519 ')
    assert run("alice", "ssh-ed25519", "AAAA").stdout == ""
    assert run("breakglass", "ssh-ed25519", 'AAAA" evil').returncode == 1
