"""`breakglass kit mint` of OpenSSH certificates, with no server and no database: what it
writes, what it journals, what it refuses (before or after the shares), and the trust
files a host gets from a bundle carrying such a kit. Real sshd: tests/integrations/
test_kit_ssh_certificates.py."""

from __future__ import annotations

import copy
import json
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_ssh_public_identity

from breakglass.core.errors import MalformedKit
from breakglass.core.kit import kit_load, kit_ssh_ca_key
from breakglass.core.krl import krl_from_bundle, trusted_ca_file
from breakglass.core.ssh import ssh_public_line
from devkit import keykit as kit
from tests.verifier.sealed import cli, kit_key, make_kit, ssh_policy

BASTION = ssh_policy("bastion-ssh", source_addresses=["127.0.0.0/8"])


@pytest.fixture(scope="module")
def sealed():
    now = int(time.time())
    document, shares = make_kit("kit-ops", now=now, ssh=[BASTION, ssh_policy("database-admin-ssh")])
    _, other_shares = make_kit("kit-other", now=now, ssh=[BASTION])
    return {"now": now, "document": document, "shares": shares, "other": other_shares}


@pytest.fixture
def laptop(tmp_path, sealed) -> Path:
    """kit.json and the responder's own key pair (made by ssh-keygen) on the laptop."""
    (tmp_path / "kit.json").write_text(json.dumps(sealed["document"]))
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rita@laptop", "-f",
         str(tmp_path / "id_ed25519")],
        check=True,
    )  # fmt: skip
    return tmp_path


def mint_ssh(folder: Path, shares, *extra, path="bastion-ssh", minutes=30):
    return cli(
        "kit", "mint", "--kit-file", folder / "kit.json", "--ssh-path", path,
        "--ssh-public-key", folder / "id_ed25519.pub", "--minutes", minutes,
        "--subject", "rita", "--reason", "bastion and Breakglass are down",
        "--journal", folder / "journal.log", *extra, shares=shares,
    )  # fmt: skip


def test_two_shares_mint_a_certificate_beside_the_key_and_journal_it(laptop, sealed):
    minted = mint_ssh(laptop, [sealed["shares"][2], sealed["shares"][0]])
    assert minted.returncode == 0, minted.stderr
    written = (laptop / "id_ed25519-cert.pub").read_text()
    assert written == minted.stdout  # on standard output too
    certificate = load_ssh_public_identity(written.strip().encode())
    payload = sealed["document"]["payload"]
    # Signed by the kit's own CA for this path, with exactly the path's policy.
    (entry,) = [e for e in payload["ssh"] if e["path"] == "bastion-ssh"]
    assert ssh_public_line(certificate.signature_key()) == entry["ca"]
    assert certificate.valid_principals == [b"bg-bastion-ssh"]
    assert certificate.critical_options == {b"source-address": b"127.0.0.0/8"}
    assert certificate.extensions == {b"permit-pty": b""}
    assert certificate.valid_before - certificate.valid_after == 30 * 60
    key_id = certificate.key_id.decode()
    assert key_id.startswith("breakglass kit kit-ops rita jti=kit-")
    # One signed journal line: the certificate's facts, never the shares.
    (line,) = (laptop / "journal.log").read_text().splitlines()
    record = json.loads(line)
    assert record["custodians"] == ["Alice", "Carol"]
    assert record["ssh"] == {
        "path": "bastion-ssh",
        "principals": ["bg-bastion-ssh"],
        "serial": certificate.serial,
        "key_id": key_id,
        "public_key": " ".join((laptop / "id_ed25519.pub").read_text().split()[:2]),
    }
    assert record["jti"] == key_id.rsplit("jti=", 1)[1]
    assert "aud" not in record and "scope" not in record
    assert "share 2 accepted: Alice" in minted.stderr
    assert "-o CertificateFile=" in minted.stderr


def test_each_covered_path_has_its_own_ca_derived_from_the_kit_key(sealed):
    certified, key = kit_key(sealed["document"], sealed["shares"])
    lines = {path: entry["ca"] for path, entry in certified.ssh.items()}
    assert set(lines) == {"bastion-ssh", "database-admin-ssh"}
    assert len(set(lines.values())) == 2
    assert ssh_public_line(certified.public_key) not in lines.values()  # not the token key
    for path, line in lines.items():
        assert ssh_public_line(kit_ssh_ca_key(key, path)) == line


@pytest.mark.parametrize(
    "pick, extra, code, message",
    [
        (lambda s: [s["shares"][0]], {}, "share_too_few", "too few shares: 1 of 2"),
        (
            lambda s: [s["shares"][0], s["other"][1]],
            {},
            "share_wrong_kit",
            "share 2 belongs to another kit, not kit-ops",
        ),
        (
            lambda s: [],
            {"minutes": 90},
            "kit_policy",
            "kit kit-ops certificates live at most 60 minutes",
        ),
        (
            lambda s: [],
            {"path": "network-oob-ssh"},
            "kit_policy",
            "kit kit-ops covers bastion-ssh, database-admin-ssh, not SSH path 'network-oob-ssh'",
        ),
        (
            lambda s: [],
            {"extra": ("--principal", "root")},
            "kit_policy",
            "kit kit-ops certificates for bastion-ssh carry only bg-bastion-ssh, not root",
        ),
    ],
    ids=["k-1 shares", "another kit", "lifetime", "path not covered", "principal"],
)
def test_refusals_say_why_and_nothing_is_written(laptop, sealed, pick, extra, code, message):
    options = {k: v for k, v in extra.items() if k != "extra"}
    refused = mint_ssh(laptop, pick(sealed), *extra.get("extra", ()), **options)
    assert refused.returncode == 1
    assert f"REFUSED {code}: {message}" in refused.stderr
    assert "Traceback" not in refused.stderr and refused.stdout == ""
    assert not (laptop / "id_ed25519-cert.pub").exists()
    assert not (laptop / "journal.log").exists()


def test_an_unusable_public_key_or_mixed_options_are_usage_errors(laptop, sealed):
    (laptop / "id_ed25519.pub").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    bad_key = mint_ssh(laptop, sealed["shares"][:2])
    assert bad_key.returncode == 2
    assert "REFUSED usage: --ssh-public-key: that is a private key" in bad_key.stderr
    mixed = mint_ssh(laptop, sealed["shares"][:2], "--audience", "sso")
    assert mixed.returncode == 2
    assert (
        "breakglass kit: an SSH certificate needs --ssh-path and --ssh-public-key, "
        "not --audience" in mixed.stderr
    )
    assert not (laptop / "journal.log").exists()


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda e: e.update(ca=e["ca"] + "\nssh-ed25519 AAAA"), "ca must be one ssh-ed25519"),
        (lambda e: e.update(ca="ssh-rsa " + e["ca"].split()[1]), "ca must be one ssh-ed25519"),
        (lambda e: e.update(principals=[]), "malformed policy"),
        (lambda e: e.pop("extensions"), "has exactly"),
        (lambda e: e.update(path="../etc"), "distinct path slugs"),
    ],
    ids=["two lines", "not ed25519", "no principal", "member missing", "not a slug"],
)
def test_a_malformed_ssh_entry_refuses_the_kit(sealed, spoil, message):
    document = copy.deepcopy(sealed["document"])
    spoil(document["payload"]["ssh"][0])
    with pytest.raises(MalformedKit, match=message):
        kit_load(document, None)


def host_payload(sealed, *, retired: bool) -> dict:
    """A bundle payload carrying the kit and bastion-ssh's own CA (what sync reads)."""
    path_ca = ssh_public_line(kit.seeded_key("bastion-ssh CA"))
    return kit.payload(
        kits=[sealed["document"]],
        ssh=[{"path": "bastion-ssh", "ca": path_ca, "trusted": True, "revoked_serials": []}],
        revoked_kids=[sealed["document"]["payload"]["kid"]] if retired else [],
    )


def test_a_host_trusts_a_live_kits_ca_and_revokes_a_retired_kits(laptop, sealed):
    assert mint_ssh(laptop, sealed["shares"][:2]).returncode == 0
    (entry,) = [e for e in sealed["document"]["payload"]["ssh"] if e["path"] == "bastion-ssh"]
    live = host_payload(sealed, retired=False)
    assert trusted_ca_file(live, ["bastion-ssh"]).decode().splitlines() == [
        live["ssh"][0]["ca"],
        f"{entry['ca']} breakglass kit kit-ops for bastion-ssh",
    ]
    retired = host_payload(sealed, retired=True)
    assert trusted_ca_file(retired, ["bastion-ssh"]).decode().splitlines() == [
        retired["ssh"][0]["ca"],
        "# breakglass: kit kit-ops is retired (its CA is in the KRL)",
    ]

    def query(payload) -> subprocess.CompletedProcess:
        (laptop / "revoked.krl").write_bytes(krl_from_bundle(payload, "bastion-ssh"))
        return subprocess.run(
            ["ssh-keygen", "-Q", "-f", str(laptop / "revoked.krl"),
             str(laptop / "id_ed25519-cert.pub")],
            capture_output=True, text=True,
        )  # fmt: skip

    assert query(live).returncode == 0
    revoked = query(retired)
    assert revoked.returncode == 1 and "REVOKED" in revoked.stdout


def test_the_reconstruction_drill_proves_each_ssh_ca_and_a_swapped_ca_line_mints_nothing(
    laptop, sealed
):
    rebuilt = cli(
        "kit", "rebuild", "--kit-file", laptop / "kit.json", "--json",
        shares=sealed["shares"][1:],
    )  # fmt: skip
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["ssh_paths"] == ["bastion-ssh", "database-admin-ssh"]
    # A kit file whose CA line for a path is not the kit's own (without --roots the
    # laptop checks the structure only): the rebuilt key proves it wrong before signing.
    swapped = copy.deepcopy(sealed["document"])
    swapped["payload"]["ssh"][0]["ca"] = ssh_public_line(kit.seeded_key("someone else"))
    (laptop / "kit.json").write_text(json.dumps(swapped))
    refused = mint_ssh(laptop, sealed["shares"][:2])
    assert refused.returncode == 1
    assert (
        "REFUSED share_mismatch: the rebuilt key does not give kit kit-ops's CA for "
        "bastion-ssh; nothing minted" in refused.stderr
    )
    assert not (laptop / "journal.log").exists()
    drill = cli("kit", "rebuild", "--kit-file", laptop / "kit.json", shares=sealed["shares"][1:])
    assert drill.returncode == 1 and "CA for bastion-ssh" in drill.stderr
