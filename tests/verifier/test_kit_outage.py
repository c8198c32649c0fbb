"""The whole kit route during an outage, with real processes and nothing else running.

No web server and an unreachable database (DATABASE_URL points at a closed port): the
custodians mint from k shares with `breakglass kit mint`, and the token is accepted by
`breakglass verify` and by a real `breakglass serve` process, using trust files written
before the outage, also once the bundle has expired. The SSH gate behind a real sshd:
tests/integrations/test_kit_ssh_gate.py.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devkit import keykit as kit
from tests.verifier.sealed import (
    DAY,
    cli,
    host_bundle,
    make_kit,
    outage_environment,
    ssh_policy,
)


@pytest.fixture(scope="module")
def sealed():
    """A real 2-of-3 kit, another kit, and a host's trust files synced before the outage.

    The bundle is current for a day from now; tests move time past it with --now (CLI)
    or by writing a bundle that has already expired (the sidecar uses its own clock).
    """
    now = int(time.time())
    # It covers an SSH path too: verifiers load that part on every login (a shape check).
    document, shares = make_kit("kit-ops", now=now, ssh=[ssh_policy("bastion-ssh")])
    _, other_shares = make_kit("kit-other", now=now)
    return {"now": now, "document": document, "shares": shares, "other": other_shares}


def trust_files(folder: Path, sealed, *, expired: bool, revoked_kids=()) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "bundle.json").write_bytes(
        host_bundle(
            [sealed["document"]], now=sealed["now"], expired=expired, revoked_kids=revoked_kids
        )
    )
    (folder / "roots.json").write_bytes(kit.dumps(kit.roots()))
    (folder / "kit.json").write_text(json.dumps(sealed["document"]))
    (folder / "audience").write_text("sso\n")
    return folder


def mint(folder: Path, shares, *extra, minutes=30, audience="sso", now=None):
    args = [
        "kit", "mint", "--kit-file", folder / "kit.json", "--audience", audience,
        "--scope", "ssh:login", "--minutes", minutes, "--subject", "rita",
        "--reason", "SSO and Breakglass are down", "--journal", folder / "journal.log",
    ]  # fmt: skip
    if now is not None:
        args += ["--now", now]
    return cli(*args, *extra, shares=shares)


def verify(folder: Path, token: str, *, now: int, json_output=False):
    args = ["verify", "--bundle", folder / "bundle.json", "--roots", folder / "roots.json"]
    args += ["--audience", "sso", "--scope", "ssh:login", "--now", now]
    return cli(*args, *(["--json"] if json_output else []), token)


def test_two_shares_mint_a_token_the_cli_accepts_as_a_kit_token(tmp_path, sealed):
    folder = trust_files(tmp_path, sealed, expired=False)
    minted = mint(folder, [sealed["shares"][0], sealed["shares"][2]])
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    assert "share 2 accepted: Carol" in minted.stderr
    accepted = verify(folder, token, now=sealed["now"])
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.startswith("ACCEPT (kit kit-ops) token for sso")
    as_json = json.loads(verify(folder, token, now=sealed["now"], json_output=True).stdout)
    assert as_json["decision"] == "accept" and as_json["kit"] == "kit-ops"
    assert as_json["claims"]["approvers"] == ["Alice", "Carol"]
    # The journal holds one signed line for the mint, and only the public facts.
    (line,) = (folder / "journal.log").read_text().splitlines()
    record = json.loads(line)
    assert record["jti"] == as_json["claims"]["jti"] and record["custodians"] == ["Alice", "Carol"]
    assert oct((folder / "journal.log").stat().st_mode & 0o777) == "0o600"
    assert not any(word in line for word in sealed["shares"][0].split()[4:])


def test_past_the_bundles_expiry_normal_tokens_are_refused_and_the_kit_token_accepted(
    tmp_path, sealed
):
    folder = trust_files(tmp_path, sealed, expired=False)
    later = sealed["now"] + 3 * DAY  # Breakglass has been down for three days
    token = mint(folder, sealed["shares"][1:], now=later).stdout.strip()
    normal = kit.token(iat=later, nbf=later, exp=later + 600)
    refused = verify(folder, normal, now=later)
    assert refused.returncode == 1
    assert "REJECT expired_bundle" in refused.stderr
    accepted = verify(folder, token, now=later)
    assert accepted.returncode == 0, accepted.stderr
    assert "ACCEPT (kit kit-ops)" in accepted.stdout


@pytest.mark.parametrize(
    "pick, code, message",
    [
        (lambda s: [s["shares"][0]], "share_too_few", "too few shares: 1 of 2"),
        (lambda s: [s["shares"][0], s["other"][1]], "share_wrong_kit", "belongs to another kit"),
        (
            lambda s: [s["shares"][0], s["shares"][1].replace(" ", " x", 1)],
            "share_mistyped",
            "share 2: word 2 is not a SLIP-39 word",
        ),
        (
            lambda s: [s["shares"][0], swap_two_words(s["shares"][1])],
            "share_mistyped",
            "checksum does not match",
        ),
        (lambda s: [s["shares"][0], s["shares"][0]], "share_duplicate", "Alice's again"),
    ],
    ids=["k-1 shares", "another kit", "mistyped word", "swapped words", "same custodian"],
)
def test_bad_shares_are_refused_with_a_clear_message_and_nothing_is_minted(
    tmp_path, sealed, pick, code, message
):
    folder = trust_files(tmp_path, sealed, expired=False)
    refused = mint(folder, pick(sealed))
    assert refused.returncode == 1
    assert f"REFUSED {code}" in refused.stderr and message in refused.stderr
    assert refused.stdout == ""
    assert not (folder / "journal.log").exists()
    assert "Traceback" not in refused.stderr


def swap_two_words(share: str) -> str:
    words = share.split()
    words[10], words[11] = words[11], words[10]
    return " ".join(words)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"audience": "db"}, "kit kit-ops covers sso, not 'db'"),
        ({"minutes": 90}, "tokens live at most 60 minutes"),
    ],
)
def test_a_request_beyond_the_kits_policy_is_refused_before_any_share_is_typed(
    tmp_path, sealed, options, message
):
    folder = trust_files(tmp_path, sealed, expired=False)
    refused = mint(folder, [], **options)
    assert refused.returncode == 1
    assert "REFUSED kit_policy" in refused.stderr and message in refused.stderr


def test_a_retired_kits_token_is_refused(tmp_path, sealed):
    folder = trust_files(tmp_path, sealed, expired=False)
    token = mint(folder, sealed["shares"][:2]).stdout.strip()
    kid = sealed["document"]["payload"]["kid"]
    trust_files(folder, sealed, expired=True, revoked_kids=[kid])
    refused = verify(folder, token, now=sealed["now"])
    assert refused.returncode == 1
    assert "REJECT retired_kit: kit 'kit-ops' has been retired" in refused.stderr


@pytest.fixture
def serve(tmp_path):
    processes = []

    def start(folder: Path) -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        process = subprocess.Popen(
            [sys.executable, "-m", "breakglass.core", "serve", "--bundle", folder / "bundle.json",
             "--roots", folder / "roots.json", "--audience", "sso", "--scope", "ssh:login",
             "--state", folder / "sidecar-state", "--listen", f"127.0.0.1:{port}"],
            env=outage_environment(),
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        processes.append(process)
        process.stderr.readline()  # "breakglass serve: sso on ..." once it listens
        return port

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)
        process.stderr.close()


def ask(port: int, token: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/auth", headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_a_real_sidecar_lets_a_kit_token_through_after_the_bundle_expired(tmp_path, sealed, serve):
    folder = trust_files(tmp_path, sealed, expired=True)
    token = mint(folder, [sealed["shares"][2], sealed["shares"][0]]).stdout.strip()
    port = serve(folder)
    now = int(time.time())
    refused = ask(port, kit.token(iat=now, nbf=now, exp=now + 600))
    assert refused.status == 401
    assert refused.getheader("X-Breakglass-Error") == "expired_bundle"
    accepted = ask(port, token)
    assert accepted.status == 204
    assert accepted.getheader("X-Breakglass-Kit") == "kit-ops"
    assert accepted.getheader("X-Breakglass-Subject") == "rita"


def test_a_custodian_checks_a_share_without_revealing_it(tmp_path, sealed):
    folder = trust_files(tmp_path, sealed, expired=False)
    checked = cli("kit", "check", "--kit-file", folder / "kit.json", shares=[sealed["shares"][1]])
    assert checked.returncode == 0, checked.stderr
    assert "share OK: Bob's share of kit kit-ops (2-of-3)" in checked.stderr
    code = checked.stdout.strip()
    assert code.startswith("bgkc1.kit-ops.1.")
    assert not set(sealed["shares"][1].split()[4:]) & set(code.split("."))
    wrong = cli("kit", "check", "--kit-file", folder / "kit.json", shares=[sealed["other"][1]])
    assert wrong.returncode == 1 and "belongs to another kit" in wrong.stderr


def test_the_reconstruction_drill_proves_the_key_and_mints_nothing(tmp_path, sealed):
    folder = trust_files(tmp_path, sealed, expired=False)
    rebuilt = cli(
        "kit", "rebuild", "--kit-file", folder / "kit.json", "--roots", folder / "roots.json",
        "--json", shares=sealed["shares"][1:],
    )  # fmt: skip
    assert rebuilt.returncode == 0, rebuilt.stderr
    result = json.loads(rebuilt.stdout)
    assert result["decision"] == "match" and result["custodians"] == ["Bob", "Carol"]
    assert result["kid"] == sealed["document"]["payload"]["kid"]
    assert not (folder / "journal.log").exists()


def test_plain_verify_of_a_bundle_with_kits_does_not_load_slip39_or_argparse(tmp_path, sealed):
    folder = trust_files(tmp_path, sealed, expired=False)
    token = mint(folder, sealed["shares"][:2]).stdout.strip()
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "breakglass.core", "verify",
         "--bundle", folder / "bundle.json", "--roots", folder / "roots.json",
         "--audience", "sso", token],
        env=outage_environment(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "breakglass.core.kit" in imported
    heavy = {"breakglass.core.ssh", "cryptography.hazmat.primitives.serialization.ssh"}
    assert not {"shamir_mnemonic", "argparse", "django", "hashlib", *heavy} & imported
