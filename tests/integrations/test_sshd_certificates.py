"""SSH paths against a real OpenSSH sshd, configured exactly as the documentation says
(TrustedUserCAKeys + RevokedKeys + AuthorizedPrincipalsFile), with the trust files
installed by `breakglass sync` from a live Breakglass server (the single-file verifier run by
Debian's python3, as on a host), and the real `ssh` client."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from breakglass.access.grants import grant_self_issue
from breakglass.access.lifecycle import grant_revoke
from breakglass.access.models import BackupPath
from breakglass.keys import services
from breakglass.keys.selectors import roots_export
from devkit.workers import ROOT
from tests.breakglass.conftest import path_make
from tests.integrations.sshd import PRODUCTION, PRODUCTION_MULTI, SSHD_CONFIG, client_key

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DOC = ROOT / "docs" / "integrations" / "ssh-certificates.md"


@pytest.fixture
def platform(live_server, settings, tmp_path):
    """A live server with two SSH paths (each its own CA) in the bundle, and its roots."""
    settings.TRUST_PUBLISH_DIR = tmp_path / "published"
    services.keys_bootstrap()
    bastion = path_make("bastion-ssh", service="bastion", method="ssh-certificate")
    database = path_make("database-admin-ssh", service="db", method="ssh-certificate")
    services.bundle_refresh()
    roots = tmp_path / "roots.json"
    roots.write_text(json.dumps(roots_export()))
    return live_server, roots, bastion, database


def sync(verifier_command, live_server, roots: Path, server) -> None:
    """What the host's timer runs (docs/verifier.md), into the sshd's trust folder."""
    paths = [argument for path in server.paths for argument in ("--ssh-path", path)]
    result = subprocess.run(
        [*verifier_command, "sync", "--url", live_server.url,
         "--roots", str(roots), "--dir", str(server.trust_dir), *paths],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def issue(path: BackupPath, responder, public_key: str) -> tuple:
    return grant_self_issue(
        path=path,
        requester=responder,
        reason="restore the bastion",
        confirmation=path.slug,
        ssh_public_key=public_key,
        lifetime_minutes=15,
    )


@pytest.fixture
def bastion_host(sshd, platform, verifier_command):
    live_server, roots, bastion, _ = platform
    server = sshd.start(path="bastion-ssh", principals=["bg-bastion-ssh"])
    sync(verifier_command, live_server, roots, server)
    return server


def test_a_certificate_from_the_path_logs_in(bastion_host, platform, responder, tmp_path):
    _, _, bastion, _ = platform
    key, public = client_key(tmp_path)
    grant, certificate = issue(bastion, responder, public)
    result = bastion_host.login(key=key, certificate=certificate)
    assert result.accepted, result.stderr + bastion_host.log_text()
    assert result.stdout.strip() == bastion_host.user
    # sshd logs the key ID, which names the grant and its jti.
    assert f"jti={grant.jti}" in bastion_host.log_text()


def test_a_certificate_from_another_paths_ca_is_refused(
    bastion_host, platform, responder, tmp_path
):
    _, _, _, database = platform
    database.ssh_principals = ["bg-bastion-ssh"]  # even with a principal the host accepts
    database.save()
    key, public = client_key(tmp_path)
    _, certificate = issue(database, responder, public)
    result = bastion_host.login(key=key, certificate=certificate)
    assert not result.accepted
    assert "Permission denied" in result.stderr
    log = bastion_host.log_text()
    assert f"Failed publickey for {bastion_host.user}" in log and "Accepted" not in log


def test_a_certificate_with_a_principal_the_host_does_not_map_is_refused(
    bastion_host, platform, responder, tmp_path
):
    _, _, bastion, _ = platform
    bastion.ssh_principals = ["bg-someone-else"]
    bastion.save()
    key, public = client_key(tmp_path)
    _, certificate = issue(bastion, responder, public)
    result = bastion_host.login(key=key, certificate=certificate)
    assert not result.accepted and "Permission denied" in result.stderr
    assert "Certificate does not contain an authorized principal" in bastion_host.log_text()


def test_an_expired_certificate_is_refused(bastion_host, platform, tmp_path):
    _, _, bastion, _ = platform
    key, public = client_key(tmp_path)
    now = timezone.now()
    # The clock the certificate carries: valid for five minutes that ended a minute ago.
    certificate = services.ssh_certificate_issue(
        ca=bastion.ssh_ca,
        public_key=public,
        principals=["bg-bastion-ssh"],
        key_id="expired",
        serial=999_001,
        valid_after=now - timedelta(minutes=6),
        valid_before=now - timedelta(minutes=1),
    )
    result = bastion_host.login(key=key, certificate=certificate)
    assert not result.accepted and "Permission denied" in result.stderr
    assert "expired" in bastion_host.log_text()


def test_a_revoked_certificate_is_refused_after_one_sync(
    bastion_host, platform, responder, tmp_path, verifier_command
):
    live_server, roots, bastion, _ = platform
    key, public = client_key(tmp_path)
    grant, certificate = issue(bastion, responder, public)
    assert bastion_host.login(key=key, certificate=certificate).accepted

    grant_revoke(grant=grant, actor=responder, reason="laptop lost")
    # Until the host syncs, sshd cannot know: this is the propagation the drill measures.
    assert bastion_host.login(key=key, certificate=certificate).accepted
    sync(verifier_command, live_server, roots, bastion_host)
    result = bastion_host.login(key=key, certificate=certificate)
    assert not result.accepted and "Permission denied" in result.stderr
    assert "revoked" in bastion_host.log_text().lower()


def test_after_its_ca_is_revoked_the_host_trusts_no_certificate_of_the_path_after_one_sync(
    bastion_host, platform, responder, tmp_path, verifier_command
):
    live_server, roots, bastion, _ = platform
    key, public = client_key(tmp_path)
    _, certificate = issue(bastion, responder, public)
    assert bastion_host.login(key=key, certificate=certificate).accepted
    services.key_revoke(kid=bastion.ssh_ca.kid, reason="CA key leaked")
    sync(verifier_command, live_server, roots, bastion_host)
    ca_file = bastion_host.trust_dir / "ssh" / "bastion-ssh" / "ca.pub"
    assert ca_file.read_text() == "# breakglass: the CA of bastion-ssh is revoked or retired\n"
    assert not bastion_host.login(key=key, certificate=certificate).accepted


def test_a_host_of_two_paths_accepts_both_and_refuses_the_revoked_one_after_one_sync(
    sshd, platform, responder, tmp_path, verifier_command
):
    live_server, roots, bastion, database = platform
    server = sshd.start(
        paths=["bastion-ssh", "database-admin-ssh"],
        principals=["bg-bastion-ssh", "bg-database-admin-ssh"],
    )
    sync(verifier_command, live_server, roots, server)
    bastion_key, bastion_public = client_key(tmp_path, "bastion")
    database_key, database_public = client_key(tmp_path, "database")
    _, bastion_cert = issue(bastion, responder, bastion_public)
    database.allow_self_issue = True
    database.save()
    grant, database_cert = issue(database, responder, database_public)
    assert server.login(key=bastion_key, certificate=bastion_cert).accepted
    assert server.login(key=database_key, certificate=database_cert).accepted

    grant_revoke(grant=grant, actor=responder, reason="done")
    sync(verifier_command, live_server, roots, server)
    assert not server.login(key=database_key, certificate=database_cert).accepted
    assert server.login(key=bastion_key, certificate=bastion_cert).accepted


def test_the_documentation_shows_exactly_the_configurations_the_tests_run():
    text = DOC.read_text()
    blocks = re.findall(r"```sshd_config\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 2, f"{DOC} needs its two ```sshd_config blocks"
    assert blocks[0] == SSHD_CONFIG.format(**PRODUCTION)
    assert blocks[1] == SSHD_CONFIG.format(**PRODUCTION_MULTI)
