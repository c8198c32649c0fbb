import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from breakglass.core.ssh import InvalidSshPublicKey, ssh_public_line
from breakglass.keys import services
from breakglass.keys.models import SigningKey

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")

VALID_AFTER = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
VALID_BEFORE = VALID_AFTER + timedelta(minutes=45)


@pytest.fixture
def ca(db):
    return services.ssh_ca_create(name="bastion")


def issue(ca, **overrides):
    fields = {
        "ca": ca,
        "public_key": ssh_public_line(ed25519.Ed25519PrivateKey.generate(), "rita@laptop"),
        "principals": ["root", "break-glass"],
        "key_id": "breakglass-grant-42",
        "serial": 42,
        "valid_after": VALID_AFTER,
        "valid_before": VALID_BEFORE,
    }
    fields.update(overrides)
    return services.ssh_certificate_issue(**fields)


def ssh_keygen_list(tmp_path, certificate: str) -> str:
    path = tmp_path / "id_ed25519-cert.pub"
    path.write_text(certificate + "\n")
    result = subprocess.run(
        ["ssh-keygen", "-L", "-f", str(path)], capture_output=True, text=True, check=True
    )
    return result.stdout


def test_ssh_keygen_shows_principals_validity_and_key_id(ca, tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    listing = ssh_keygen_list(tmp_path, issue(ca))
    assert "user certificate" in listing
    assert 'Key ID: "breakglass-grant-42"' in listing
    assert "Serial: 42" in listing
    assert "Valid: from 2026-03-01T12:00:00 to 2026-03-01T12:45:00" in listing
    principals = listing.split("Principals:")[1].split("Critical Options:")[0].split()
    assert principals == ["root", "break-glass"]
    assert "permit-pty" in listing
    assert "permit-agent-forwarding" not in listing


def test_certificate_is_signed_by_the_path_ca(ca, tmp_path):
    ca_fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-f", "/dev/stdin"],
        input=ca.ssh_public_line(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1]
    assert f"Signing CA: ED25519 {ca_fingerprint}" in ssh_keygen_list(tmp_path, issue(ca))


def test_rsa_keys_are_accepted_too(ca, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    from cryptography.hazmat.primitives import serialization

    line = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    assert "ssh-rsa-cert-v01@openssh.com" in issue(ca, public_key=line.decode())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "paste an OpenSSH public key"),
        ("ssh-ed25519 not-base64!!", "not a valid OpenSSH public key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "that is a private key"),
        ("ssh-ed25519-cert-v01@openssh.com AAAA", "that is a certificate"),
        ("ssh-ed25519 AAAA\nssh-ed25519 AAAA", "exactly one"),
    ],
)
def test_invalid_public_keys_get_a_human_message(ca, text, message):
    with pytest.raises(InvalidSshPublicKey, match=message):
        issue(ca, public_key=text)
    assert issubclass(InvalidSshPublicKey, ValueError)


def test_weak_rsa_keys_are_refused(ca):
    from cryptography.hazmat.primitives import serialization

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    line = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    with pytest.raises(InvalidSshPublicKey, match="at least 2048 bits"):
        issue(ca, public_key=line.decode())


def test_only_an_active_ssh_ca_signs(ca, trust):
    services.key_revoke(kid=ca.kid, reason="compromised")
    with pytest.raises(ValueError, match="revoked, not active"):
        issue(ca)
    issuer = SigningKey.objects.get(purpose=SigningKey.Purpose.ISSUER)
    with pytest.raises(ValueError, match="not an SSH certificate authority"):
        issue(issuer)


def test_issuing_is_audited(ca):
    from breakglass.audit.models import AuditEvent

    issue(ca)
    event = AuditEvent.objects.get(action="ssh_certificate.issued")
    assert event.data["principals"] == ["root", "break-glass"]
    assert event.data["serial"] == 42
