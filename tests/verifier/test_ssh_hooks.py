"""The SSH hooks shipped in docs/integrations/ssh, run as sshd and pam_exec would run them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.verifier import kit

HOOKS = Path(__file__).resolve().parents[2] / "docs" / "integrations" / "ssh"
NOW = str(kit.NOW)


@pytest.fixture
def conf(tmp_path):
    (tmp_path / "bundle.json").write_bytes(kit.dumps(kit.bundle()))
    (tmp_path / "roots.json").write_bytes(kit.dumps(kit.roots()))
    (tmp_path / "audience").write_text("sso\n")
    # A wrapper pins the clock to the test vectors' `now`, as the real clock would be.
    wrapper = tmp_path / "breakglass"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m breakglass.core "$@" --now {NOW}\n')
    wrapper.chmod(0o755)
    return tmp_path


def environment(conf, **extra):
    return {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(HOOKS.parents[2]),
        "BREAKGLASS": str(conf / "breakglass"),
        "BREAKGLASS_CONF_DIR": str(conf),
        "BREAKGLASS_STATE_DIR": str(conf / "state"),
        **extra,
    }


def pam(conf, token: str, user: str) -> int:
    return subprocess.run(
        [str(HOOKS / "breakglass-pam-auth")],
        input=token.encode() + b"\0",  # pam_exec's expose_authtok adds the NUL
        env=environment(conf, PAM_USER=user, PAM_TYPE="auth"),
        capture_output=True,
    ).returncode


def test_pam_accepts_a_token_for_the_account_logging_in_once(conf):
    token = kit.token(sub="rita")
    assert pam(conf, token, "rita") == 0
    assert pam(conf, token, "rita") == 1  # single use on this host


def test_pam_refuses_a_token_for_someone_else_or_without_ssh_scope(conf):
    assert pam(conf, kit.token(sub="rita"), "root") == 1
    assert pam(conf, kit.token(sub="rita", scope="db:read"), "rita") == 1
    assert pam(conf, "hunter2", "rita") == 1


def test_authorized_keys_command_forces_the_gate_for_the_breakglass_account_only():
    def run(*args):
        return subprocess.run(
            [str(HOOKS / "breakglass-authorized-keys"), *args], capture_output=True, text=True
        )

    line = run("breakglass", "ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIB").stdout
    assert line.startswith('restrict,pty,command="/usr/local/libexec/breakglass-gate" ssh-ed25519 ')
    assert run("alice", "ssh-ed25519", "AAAA").stdout == ""
    assert run("breakglass", "ssh-ed25519", 'AAAA" evil').returncode == 1


def test_the_gate_starts_a_shell_only_for_a_valid_token(conf):
    def gate(command):
        return subprocess.run(
            [str(HOOKS / "breakglass-gate")],
            env=environment(
                conf, SSH_ORIGINAL_COMMAND=command, BREAKGLASS_SHELL="/bin/echo", HOME=str(conf)
            ),
            capture_output=True,
            text=True,
        )

    accepted = gate(kit.token())
    assert accepted.returncode == 0
    assert accepted.stdout.strip() == "-l"  # the "shell" ran
    assert gate(kit.token()).returncode == 1  # replay
    refused = gate(kit.token(aud="vpn", jti="other"))
    assert refused.returncode == 1
    assert "wrong_audience" in refused.stderr
    assert gate("").returncode == 1
