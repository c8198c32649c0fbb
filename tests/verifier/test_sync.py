"""`breakglass sync` against a live Breakglass server: it installs only what verifies
against the pinned roots and is not older than what is installed, atomically, and says
why in one line otherwise (real CLI process, real HTTP)."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys

import pytest

from breakglass.access.credentials import grant_issue_drill
from breakglass.access.lifecycle import grant_revoke
from breakglass.keys import services
from breakglass.keys.selectors import roots_export
from devkit import keykit as kit
from devkit.workers import ROOT
from tests.breakglass.conftest import path_make

pytestmark = [pytest.mark.django_db(transaction=True)]


def breakglass(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "breakglass.core", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert "Traceback" not in result.stdout + result.stderr
    return result


@pytest.fixture
def server(live_server, settings, tmp_path):
    """A live server with keys, two SSH paths in the bundle, and its roots file."""
    settings.TRUST_PUBLISH_DIR = tmp_path / "published"
    services.keys_bootstrap()
    path_make("bastion-ssh", service="bastion", method="ssh-certificate")
    path_make("database-admin-ssh", service="db", method="ssh-certificate")
    services.bundle_refresh()
    (tmp_path / "roots.json").write_text(json.dumps(roots_export()))
    return live_server


def sync(server, tmp_path, *extra: str, url: str | None = None) -> subprocess.CompletedProcess:
    return breakglass(
        "sync",
        "--url", url or server.url,
        "--roots", str(tmp_path / "roots.json"),
        "--dir", str(tmp_path / "etc"),
        *extra,
    )  # fmt: skip


def test_sync_installs_the_bundle_and_the_ssh_files_with_public_modes(server, tmp_path):
    result = sync(server, tmp_path, "--ssh-path", "bastion-ssh", "--ssh-path", "database-admin-ssh")
    assert result.returncode == 0, result.stderr
    assert "installed bundle version 2" in result.stdout
    etc = tmp_path / "etc"
    assert json.loads((etc / "bundle.json").read_text())["payload"]["version"] == 2
    for slug in ("bastion-ssh", "database-admin-ssh"):
        assert (etc / "ssh" / slug / "ca.pub").read_text().startswith("ssh-ed25519 ")
        served = server_get(server, f"/trust/ssh/{slug}/revoked.krl")
        assert (etc / "ssh" / slug / "revoked.krl").read_bytes() == served
    for file in (etc / "bundle.json", etc / "ssh" / "bastion-ssh" / "revoked.krl"):
        assert stat.S_IMODE(file.stat().st_mode) == 0o644
    assert stat.S_IMODE((etc / "ssh").stat().st_mode) == 0o755
    assert not [p for p in etc.rglob(".*")]  # no temporary files left behind

    again = sync(server, tmp_path, "--ssh-path", "bastion-ssh")
    assert again.returncode == 0
    assert "bundle version 2 is already installed" in again.stdout


def server_get(server, path: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(server.url + path, timeout=10) as response:  # noqa: S310
        return response.read()


def test_a_revocation_reaches_the_host_at_the_next_sync(server, tmp_path):
    from breakglass.access.models import BackupPath

    bastion = BackupPath.objects.get(slug="bastion-ssh")
    grant, certificate = grant_issue_drill(path=bastion, drill_ref="s1")
    assert sync(server, tmp_path, "--ssh-path", "bastion-ssh").returncode == 0
    grant_revoke(grant=grant, actor=None, reason="done")
    result = sync(server, tmp_path, "--ssh-path", "bastion-ssh")
    assert "installed bundle version 3" in result.stdout and "(was 2)" in result.stdout
    (tmp_path / "cert.pub").write_text(certificate + "\n")
    query = subprocess.run(
        ["ssh-keygen", "-Q", "-f", str(tmp_path / "etc/ssh/bastion-ssh/revoked.krl"),
         str(tmp_path / "cert.pub")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert query.returncode == 1 and "REVOKED" in query.stdout


def test_an_older_bundle_than_the_installed_one_is_refused(server, tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    installed = {"payload": {"version": 99}, "signatures": []}
    (etc / "bundle.json").write_text(json.dumps(installed))
    result = sync(server, tmp_path, "--ssh-path", "bastion-ssh")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"REJECT stale_bundle: refusing bundle version 2 from {server.url}/trust/bundle.json: "
        "version 99 is already installed (a rollback would un-revoke credentials)"
    ]
    assert json.loads((etc / "bundle.json").read_text()) == installed
    assert not (etc / "ssh").exists()


def test_a_bundle_not_signed_by_the_pinned_roots_is_refused(server, tmp_path):
    (tmp_path / "roots.json").write_bytes(kit.dumps(kit.roots()))  # another deployment's
    result = sync(server, tmp_path, "--ssh-path", "bastion-ssh")
    assert result.returncode == 1
    assert result.stderr.startswith("REJECT insufficient_signatures: refusing the bundle from")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "etc").exists()


def test_an_expired_bundle_is_refused(server, tmp_path):
    result = sync(server, tmp_path, "--now", str(2**40))
    assert result.returncode == 1 and "REJECT expired_bundle" in result.stderr
    assert not (tmp_path / "etc").exists()


def test_an_ssh_path_missing_from_the_bundle_installs_nothing(server, tmp_path):
    result = sync(server, tmp_path, "--ssh-path", "bastion-ssh", "--ssh-path", "nope")
    assert result.returncode == 1
    assert "has no SSH path 'nope'" in result.stderr and "nothing installed" in result.stderr
    assert not (tmp_path / "etc").exists()


def test_an_unreachable_server_is_one_clear_line(tmp_path, server):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = sync(server, tmp_path, url=f"http://127.0.0.1:{port}")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith(
        f"breakglass: cannot reach http://127.0.0.1:{port}/trust/bundle.json: "
    )
    assert not (tmp_path / "etc").exists()


def test_an_http_error_is_one_clear_line(server, tmp_path):
    result = sync(server, tmp_path, url=f"{server.url}/nowhere")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        f"breakglass: {server.url}/nowhere/trust/bundle.json answered HTTP 404 Not Found"
    )


def test_sync_usage_errors_are_one_line(tmp_path):
    result = breakglass("sync", "--url", "ftp://x", "--roots", "/dev/null", "--dir", str(tmp_path))
    assert result.returncode == 2
    result = breakglass("sync", "--roots", "r.json", "--dir", str(tmp_path))
    assert result.returncode == 2 and "missing --url" in result.stderr
