"""The newcomer sequence of issue 9: a console on another port, then a CLI revoke and an
export in another shell. Every process signs with the stored issuer, so tokens issued
before keep verifying (real subprocesses, each with its own BREAKGLASS_BASE_URL)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from breakglass.access.credentials import grant_issue_drill
from breakglass.core import verify_bundle, verify_token
from breakglass.keys.selectors import bundle_latest, roots_export
from devkit.workers import ROOT, worker_env
from tests.breakglass.conftest import path_make

pytestmark = [pytest.mark.django_db(transaction=True)]


def _manage(*args: str, base_url: str) -> subprocess.CompletedProcess:
    env = worker_env(BREAKGLASS_BASE_URL=base_url)
    env.pop("BREAKGLASS_ISSUER", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_processes_with_other_base_urls_revoke_and_re_sign_and_earlier_tokens_keep_verifying(
    settings, tmp_path
):
    settings.BREAKGLASS_ISSUER = "http://127.0.0.1:8000"
    from breakglass.keys.services import keys_bootstrap

    keys_bootstrap()
    path = path_make("sso-backup")
    kept, kept_token = grant_issue_drill(path=path, drill_ref="kept")
    gone, gone_token = grant_issue_drill(path=path, drill_ref="gone")

    revoked = _manage(
        "revoke_grant", "--jti", gone.jti, "--reason", "done", base_url="http://127.0.0.1:8765"
    )
    assert revoked.returncode == 0, revoked.stderr
    assert "set_issuer" in revoked.stderr  # told, once, that its configuration differs
    rotated = _manage("rotate_issuer_key", base_url="https://elsewhere.example")
    assert rotated.returncode == 0, rotated.stderr
    out = tmp_path / "bundle.json"
    exported = _manage("export_bundle", "--out", str(out), base_url="http://127.0.0.1:9999")
    assert exported.returncode == 0, exported.stderr

    latest = bundle_latest()
    assert latest.version == 3  # bootstrap, the revocation, the rotation
    verified = verify_bundle(out.read_bytes(), roots_export())
    assert verified.issuer == "http://127.0.0.1:8000"
    # Drill grants are the quickest real tokens here; the verifier must be told to allow them.
    assert verify_token(kept_token, verified, audience="sso", allow_drill=True)["jti"] == kept.jti
    from breakglass.core.errors import VerificationError

    with pytest.raises(VerificationError, match="revoked"):
        verify_token(gone_token, verified, audience="sso", allow_drill=True)
