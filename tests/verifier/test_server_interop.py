"""The whole loop: the server mints and exports, the installed CLI decides, offline."""

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from breakglass.keys import services

SCRIPT = Path(sys.executable).parent / "breakglass"


@pytest.fixture
def exported(db, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.TRUST_PUBLISH_DIR = tmp_path / "published"
    settings.BREAKGLASS_ISSUER = "https://breakglass.test"
    with django_capture_on_commit_callbacks(execute=True):
        services.keys_bootstrap()

    def export():
        call_command("export_bundle", out=str(tmp_path / "bundle.json"))
        call_command("export_roots", out=str(tmp_path / "roots.json"))
        return tmp_path

    return export


def mint(jti: str, audience: str = "sso") -> str:
    now = timezone.now()
    return services.token_mint(
        subject="rita-responder",
        audience=audience,
        scopes=["ssh:login", "admin"],
        path="sso-backup-ssh",
        incident="INC-2026-0042",
        approvers=["alex-approver"],
        drill=False,
        emergency=False,
        not_before=now,
        expires_at=now + timedelta(minutes=15),
        jti=jti,
    )


def cli(folder: Path, token: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), "verify", "--bundle", str(folder / "bundle.json"), "--roots",
         str(folder / "roots.json"), "--audience", "sso", *extra, token],
        capture_output=True,
        text=True,
    )  # fmt: skip


def test_a_server_minted_token_verifies_with_the_exported_bundle_and_roots(exported):
    folder = exported()
    result = cli(folder, mint("interop-1"), "--scope", "admin")
    assert result.returncode == 0, result.stderr
    assert '"interop-1"' in result.stdout
    bundle = subprocess.run(
        [
            str(SCRIPT),
            "bundle",
            "verify",
            "--roots",
            str(folder / "roots.json"),
            str(folder / "bundle.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert bundle.returncode == 0, bundle.stderr


def test_tampered_foreign_and_revoked_server_tokens_are_refused(
    exported, django_capture_on_commit_callbacks
):
    token = mint("interop-2")
    other = mint("interop-3", audience="vpn")
    with django_capture_on_commit_callbacks(execute=True):
        services.credential_revoke(
            jti="interop-2", expires_at=timezone.now() + timedelta(minutes=15), reason="test"
        )
    folder = exported()
    revoked = cli(folder, token)
    assert (revoked.returncode, revoked.stderr.split(":")[0]) == (1, "REJECT revoked")
    wrong = cli(folder, other)
    assert (wrong.returncode, wrong.stderr.split(":")[0]) == (1, "REJECT wrong_audience")
    header, claims, signature = mint("interop-4").split(".")
    tampered = cli(folder, f"{header}.{claims}.{signature[::-1]}")
    assert tampered.returncode == 1
    assert "Traceback" not in tampered.stderr


def test_the_bundle_served_over_http_is_the_one_verifiers_accept(exported, client):
    from breakglass.core import verify_bundle, verify_token

    exported()
    bundle = verify_bundle(
        client.get("/trust/bundle.json").content, client.get("/trust/roots.json").content
    )
    assert verify_token(mint("interop-5"), bundle, audience="sso")["sub"] == "rita-responder"
