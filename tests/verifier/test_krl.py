"""The KRL writer, checked by OpenSSH's own reader (`ssh-keygen -Q`, `ssh-keygen -Ql`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from breakglass.core.krl import KrlError, krl_build, krl_from_bundle

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")


def _keygen(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh-keygen", *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture
def pki(tmp_path):
    """A CA, a second CA, and a user certificate (serial 7, key ID "grant 7") from the first."""
    for name in ("ca", "other-ca", "user"):
        _keygen("-q", "-t", "ed25519", "-N", "", "-f", name, cwd=tmp_path).check_returncode()
    _keygen(
        "-q", "-s", "ca", "-I", "grant 7", "-n", "bg-x", "-z", "7", "user.pub", cwd=tmp_path
    ).check_returncode()
    return tmp_path


def _query(pki: Path, krl: bytes) -> int:
    (pki / "revoked.krl").write_bytes(krl)
    return _keygen("-Q", "-f", "revoked.krl", "user-cert.pub", cwd=pki).returncode


def _ca(pki: Path, name: str = "ca") -> str:
    return (pki / f"{name}.pub").read_text()


def test_a_certificate_revoked_by_serial_is_reported_revoked(pki):
    krl = krl_build(ca_public_line=_ca(pki), serials=[9, 7, 7], version=3, generated_at=1)
    assert _query(pki, krl) == 1
    listing = _keygen("-Ql", "-f", "revoked.krl", cwd=pki).stdout
    assert "# KRL version 3" in listing
    assert listing.count("serial: 7") == 1 and "serial: 9" in listing


def test_a_certificate_revoked_by_key_id_is_reported_revoked(pki):
    krl = krl_build(ca_public_line=_ca(pki), key_ids=["grant 7"], version=1, generated_at=1)
    assert _query(pki, krl) == 1


def test_other_serials_and_other_cas_leave_the_certificate_valid(pki):
    assert (
        _query(pki, krl_build(ca_public_line=_ca(pki), serials=[8], version=1, generated_at=1)) == 0
    )
    other = krl_build(ca_public_line=_ca(pki, "other-ca"), serials=[7], version=1, generated_at=1)
    assert _query(pki, other) == 0


def test_an_empty_krl_is_valid_and_revokes_nothing(pki):
    assert _query(pki, krl_build(ca_public_line=_ca(pki), version=1, generated_at=1)) == 0


def test_the_same_inputs_give_the_same_bytes(pki):
    one = krl_build(ca_public_line=_ca(pki), serials=[3, 1, 2], version=5, generated_at=10)
    two = krl_build(ca_public_line=_ca(pki), serials=[2, 3, 1, 1], version=5, generated_at=10)
    assert one == two


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ca_public_line": "garbage"}, "one OpenSSH public key line"),
        ({"ca_public_line": "ssh-ed25519 !!!"}, "base64"),
        ({"serials": [2**64]}, "64 bits"),
        ({"serials": [-1]}, "64 bits"),
        ({"key_ids": [""]}, "non-empty"),
        ({"version": -1}, "version"),
    ],
)
def test_bad_inputs_are_refused_with_a_clear_message(pki, kwargs, message):
    arguments = {"ca_public_line": _ca(pki), "version": 1, "generated_at": 1, **kwargs}
    with pytest.raises(KrlError, match=message):
        krl_build(**arguments)


def test_a_krl_from_a_bundle_payload_revokes_its_listed_serials(pki):
    payload = {
        "version": 12,
        "issued_at": 1_700_000_000,
        "ssh": [
            {"path": "bastion-ssh", "ca": _ca(pki).strip(), "trusted": True, "revoked_serials": [7]}
        ],
    }
    assert _query(pki, krl_from_bundle(payload, "bastion-ssh")) == 1
    with pytest.raises(KrlError, match=r"has no SSH path 'db-ssh' \(its SSH paths: bastion-ssh;"):
        krl_from_bundle(payload, "db-ssh")
    with pytest.raises(KrlError, match="lists no SSH paths"):
        krl_from_bundle({"version": 1}, "bastion-ssh")
