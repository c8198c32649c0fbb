"""Registry builders and bootstrapped keys for the access tests."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.contrib.auth.models import Group

from breakglass.access.models import BackupPath, CriticalService, Team
from breakglass.accounts import roles


@pytest.fixture(autouse=True)
def _trust_dir(settings, tmp_path):
    """Each test publishes its trust bundle into its own directory."""
    settings.TRUST_PUBLISH_DIR = tmp_path / "trust"
    settings.BREAKGLASS_ISSUER = "https://breakglass.test"
    settings.BREAKGLASS_SECURITY_CONTACTS = ["security@example.test"]
    return settings.TRUST_PUBLISH_DIR


def service_make(slug: str, *, depends_on: tuple[str, ...] = ()) -> CriticalService:
    team, _ = Team.objects.get_or_create(slug="platform", defaults={"name": "Platform"})
    service, _ = CriticalService.objects.get_or_create(
        slug=slug, defaults={"name": slug.upper(), "owning_team": team}
    )
    for dependency in depends_on:
        service.depends_on.add(service_make(dependency))
    return service


def path_make(
    slug: str = "sso-backup",
    *,
    service: str = "sso",
    method: str = BackupPath.Method.SIGNED_TOKEN,
    scopes: tuple[str, ...] = ("read", "admin"),
    max_lifetime_minutes: int = 60,
    approvals_required: int = 2,
    allow_self_issue: bool = True,
    requires: tuple[str, ...] = (),
    request_ttl_minutes: int = 30,
) -> BackupPath:
    ssh_ca = None
    if method == BackupPath.Method.SSH_CERTIFICATE:
        from breakglass.keys.services import ssh_ca_create

        ssh_ca = ssh_ca_create(name=f"{slug}-ca")
    path = BackupPath.objects.create(
        service=service_make(service),
        name=slug.replace("-", " ").title(),
        slug=slug,
        method=method,
        scopes=list(scopes),
        max_lifetime_minutes=max_lifetime_minutes,
        approvals_required=approvals_required,
        approver_group=Group.objects.get_or_create(name=roles.APPROVER)[0],
        responder_group=Group.objects.get_or_create(name=roles.RESPONDER)[0],
        allow_self_issue=allow_self_issue,
        request_ttl_minutes=request_ttl_minutes,
        ssh_ca=ssh_ca,
    )
    path.requires.add(*(service_make(slug) for slug in requires))
    return path


@pytest.fixture
def sso_path(trust):
    """Into SSO: 2 approvals, self-issue allowed, scopes read/admin, at most 60 minutes."""
    return path_make()


@pytest.fixture
def ssh_public_key() -> str:
    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
