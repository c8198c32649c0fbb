"""The sealed kit behind a real OpenSSH server: the documented gate (sshd, sudo, the
single-file verifier under Debian's python3) lets a kit token in after the host's bundle
has expired, and still refuses normal tokens and a retired kit."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from devkit import keykit as kit
from tests.integrations import test_ssh_gate
from tests.verifier.sealed import cli, host_bundle, make_kit

# The documented host (real sshd, sudo, the zipapp under the system python3) and its login.
gate_host = test_ssh_gate.gate_host
login = test_ssh_gate.login


def kit_mint(document: dict, shares: list[str], folder: Path) -> str:
    (folder / "kit.json").write_text(json.dumps(document))
    minted = cli(
        "kit", "mint", "--kit-file", folder / "kit.json", "--audience", "sso",
        "--scope", "ssh:login", "--minutes", "20", "--subject", "rita",
        "--reason", "everything is down", "--journal", folder / "journal.log",
        shares=shares,
    )  # fmt: skip
    assert minted.returncode == 0, minted.stderr
    return minted.stdout.strip()


@pytest.fixture
def sealed(tmp_path):
    now = int(time.time())
    document, shares = make_kit("kit-ops", now=now)
    return now, document, kit_mint(document, shares[1:], tmp_path)


def install(host, data: bytes) -> None:
    (host.conf / "bundle.json").write_bytes(data)
    (host.conf / "bundle.json").chmod(0o644)


def test_a_kit_token_logs_in_through_sshd_after_the_bundle_expired(gate_host, sealed):
    now, document, token = sealed
    install(gate_host, host_bundle([document], now=now, expired=True))
    normal = login(gate_host, kit.token(iat=now - 30, nbf=now - 30, exp=now + 600, jti="n-1"))
    assert "REJECT expired_bundle" in normal.stderr and "LOGGED-IN-AS" not in normal.stdout
    accepted = login(gate_host, token)
    assert accepted.returncode == 0, accepted.stderr
    assert f"LOGGED-IN-AS {gate_host.account.name}" in accepted.stdout
    assert "ACCEPT (kit kit-ops) token for sso" in accepted.stderr
    assert "REJECT replayed" in login(gate_host, token).stderr


def test_a_retired_kits_token_is_refused_by_the_gate(gate_host, sealed):
    now, document, token = sealed
    retired = [document["payload"]["kid"]]
    install(gate_host, host_bundle([document], now=now, expired=True, revoked_kids=retired))
    refused = login(gate_host, token)
    assert "REJECT retired_kit" in refused.stderr and "LOGGED-IN-AS" not in refused.stdout
