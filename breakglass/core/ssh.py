"""OpenSSH user certificates signed by an Ed25519 certificate authority (no Django).

The certificate is what `ssh -i key -o CertificateFile=key-cert.pub` presents and what
sshd checks against `TrustedUserCAKeys`: principals, a validity window and a key ID
that ties the login to the grant in the audit log (sshd logs the key ID).
"""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    SSHCertificate,
    SSHCertificateBuilder,
    SSHCertificateType,
)

# Interactive shells only. Agent and port forwarding are left off on purpose: an
# emergency login should not become a pivot point.
DEFAULT_EXTENSIONS = ("permit-pty",)
MAX_PUBLIC_KEY_LENGTH = 16 * 1024
_MIN_RSA_BITS = 2048


class InvalidSshPublicKey(ValueError):
    """The text is not an acceptable OpenSSH public key; `str()` says why, for humans."""


class InvalidSshPolicy(ValueError):
    """A path's certificate policy (principals, critical options) is not usable; `str()`
    says why, for humans. The one home of these rules: the path's model validators, the
    policy-change form and the sealed kit (breakglass/core/kit.py) all ask these checks."""


def ssh_principals_check(value) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise InvalidSshPolicy('Principals are a list of names, e.g. ["bg-bastion-ssh"].')
    for principal in value:
        # sshd splits AuthorizedPrincipalsFile lines and principal lists on these.
        if not principal or len(principal) > 64 or any(c in principal for c in " ,\t\n\r*?"):
            raise InvalidSshPolicy(
                f"{principal!r} is not a usable principal (no spaces, commas or wildcards)."
            )
    return value


def ssh_source_addresses_check(value) -> list[str]:
    """The `source-address` critical option: a list of CIDR blocks (IPv4 or IPv6)."""
    import ipaddress

    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise InvalidSshPolicy('Source addresses are a list of CIDR blocks, e.g. ["10.0.0.0/8"].')
    for address in value:
        try:
            ipaddress.ip_network(address, strict=True)
        except ValueError as exc:
            raise InvalidSshPolicy(f"{address!r} is not a CIDR block: {exc}") from None
    return value


def ssh_force_command_check(value) -> str:
    if not isinstance(value, str) or any(c in value for c in "\n\r\0"):
        raise InvalidSshPolicy("The forced command is one line.")
    return value


def ssh_public_key_parse(text: str):
    """Parse one `ssh-ed25519 AAAA... comment` line; refuse certificates and weak keys."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidSshPublicKey("paste an OpenSSH public key (the contents of id_ed25519.pub)")
    text = text.strip()
    if len(text) > MAX_PUBLIC_KEY_LENGTH or "\n" in text:
        raise InvalidSshPublicKey("paste exactly one OpenSSH public key line")
    if "PRIVATE KEY" in text:
        raise InvalidSshPublicKey(
            "that is a private key: never paste it anywhere; paste the .pub file instead"
        )
    if "-cert-v01@openssh.com" in text.split(" ", 1)[0]:
        raise InvalidSshPublicKey("that is a certificate, not a public key: paste the .pub file")
    try:
        key = serialization.load_ssh_public_key(text.encode("utf-8"))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidSshPublicKey(
            "not a valid OpenSSH public key (expected a line such as 'ssh-ed25519 AAAA... you@host')"
        ) from exc
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < _MIN_RSA_BITS:
        raise InvalidSshPublicKey(f"RSA keys must have at least {_MIN_RSA_BITS} bits")
    if not isinstance(key, (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        raise InvalidSshPublicKey("unsupported key type: use ssh-ed25519, ecdsa or rsa")
    return key


def ssh_public_line(key: Ed25519PrivateKey | ed25519.Ed25519PublicKey, comment: str = "") -> str:
    """The `ssh-ed25519 AAAA...` line for a key, e.g. a CA's line for TrustedUserCAKeys."""
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    line = key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode("ascii")
    return f"{line} {comment}".strip()


def ssh_user_certificate(
    *,
    ca_key: Ed25519PrivateKey,
    public_key: str,
    principals: list[str],
    key_id: str,
    serial: int,
    valid_after: int,
    valid_before: int,
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS,
    source_addresses: tuple[str, ...] = (),
    force_command: str = "",
) -> str:
    """Sign a user certificate; return it as one OpenSSH line (`...-cert-v01@openssh.com`).

    `source_addresses` (CIDR blocks) and `force_command` become the certificate's
    `source-address` and `force-command` critical options, which sshd enforces itself.
    """
    subject = ssh_public_key_parse(public_key)
    if not principals or not all(isinstance(p, str) and p.strip() for p in principals):
        raise ValueError("an SSH certificate needs at least one non-empty principal")
    if not 0 <= serial < 2**64:
        raise ValueError("SSH certificate serial must fit in 64 bits")
    if valid_before <= valid_after:
        raise ValueError("valid_before must be after valid_after")
    builder = (
        SSHCertificateBuilder()
        .public_key(subject)
        .type(SSHCertificateType.USER)
        .serial(serial)
        .key_id(key_id.encode("utf-8"))
        .valid_principals([p.encode("utf-8") for p in principals])
        .valid_after(valid_after)
        .valid_before(valid_before)
    )
    for name in extensions:
        builder = builder.add_extension(name.encode("ascii"), b"")
    if force_command:
        builder = builder.add_critical_option(b"force-command", force_command.encode("utf-8"))
    if source_addresses:
        builder = builder.add_critical_option(
            b"source-address", ",".join(source_addresses).encode("ascii")
        )
    certificate: SSHCertificate = builder.sign(ca_key)
    return certificate.public_bytes().decode("ascii")
