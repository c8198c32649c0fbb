"""Revoking an SSH grant reaches sshd: its serial enters the signed bundle's entry for the
path, and the path's KRL (published beside the bundle, served publicly, exported by
command) revokes it, as OpenSSH's own `ssh-keygen -Q` confirms."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from breakglass.access.credentials import grant_issue_drill
from breakglass.access.lifecycle import grant_revoke
from breakglass.keys import services
from breakglass.keys.selectors import bundle_latest, published_ssh_dir
from tests.breakglass.conftest import path_make

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")

SSH = "ssh-certificate"


@pytest.fixture
def ssh_paths(trust, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        bastion = path_make("bastion-ssh", service="bastion", method=SSH)
        database = path_make("database-admin-ssh", service="db", method=SSH)
        services.bundle_refresh()
    return bastion, database


def _revoked(krl_path, certificate: str, tmp_path) -> bool:
    cert = tmp_path / "probe-cert.pub"
    cert.write_text(certificate + "\n")
    result = subprocess.run(
        ["ssh-keygen", "-Q", "-f", str(krl_path), str(cert)], capture_output=True, text=True
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode == 1


def test_a_new_ssh_path_reaches_the_bundle_at_the_next_refresh(ssh_paths):
    entries = bundle_latest().document["payload"]["ssh"]
    assert [entry["path"] for entry in entries] == ["bastion-ssh", "database-admin-ssh"]
    assert entries[0]["ca"] == ssh_paths[0].ssh_ca.ssh_public_line()
    assert services.bundle_refresh() is None  # nothing changed: no new bundle


def test_revoking_an_ssh_grant_revokes_its_certificate_in_the_published_krl(
    ssh_paths, tmp_path, django_capture_on_commit_callbacks
):
    bastion, database = ssh_paths
    grant, certificate = grant_issue_drill(path=bastion, drill_ref="r1")
    krl = published_ssh_dir("bastion-ssh") / "revoked.krl"
    assert not _revoked(krl, certificate, tmp_path)
    with django_capture_on_commit_callbacks(execute=True):
        grant_revoke(grant=grant, actor=None, reason="done")
    entry = bundle_latest().document["payload"]["ssh"][0]
    assert entry["revoked_serials"] == [grant.pk]
    assert _revoked(krl, certificate, tmp_path)
    other = published_ssh_dir("database-admin-ssh") / "revoked.krl"
    assert not _revoked(other, certificate, tmp_path)
    assert (published_ssh_dir("bastion-ssh") / "ca.pub").read_text().strip() == (
        bastion.ssh_ca.ssh_public_line()
    )


def test_ca_pub_and_the_krl_are_served_to_anyone(
    ssh_paths, tmp_path, django_capture_on_commit_callbacks
):
    bastion, _ = ssh_paths
    grant, certificate = grant_issue_drill(path=bastion, drill_ref="r1")
    with django_capture_on_commit_callbacks(execute=True):
        grant_revoke(grant=grant, actor=None, reason="done")
    client = Client()  # not logged in
    ca = client.get("/trust/ssh/bastion-ssh/ca.pub")
    assert ca.status_code == 200
    assert ca.content.decode().strip() == bastion.ssh_ca.ssh_public_line()
    krl = client.get("/trust/ssh/bastion-ssh/revoked.krl")
    assert krl.status_code == 200 and krl["Content-Type"] == "application/octet-stream"
    (tmp_path / "served.krl").write_bytes(krl.content)
    assert _revoked(tmp_path / "served.krl", certificate, tmp_path)
    again = client.get("/trust/ssh/bastion-ssh/revoked.krl", HTTP_IF_NONE_MATCH=krl["ETag"])
    assert again.status_code == 304


def test_unknown_paths_get_a_plain_404(ssh_paths):
    client = Client()
    for url in ("/trust/ssh/nope/ca.pub", "/trust/ssh/nope/revoked.krl"):
        response = client.get(url)
        assert response.status_code == 404
        assert b"nope" in response.content


def test_export_commands_write_the_ca_and_the_krl(
    ssh_paths, tmp_path, django_capture_on_commit_callbacks
):
    bastion, _ = ssh_paths
    grant, certificate = grant_issue_drill(path=bastion, drill_ref="r1")
    with django_capture_on_commit_callbacks(execute=True):
        grant_revoke(grant=grant, actor=None, reason="done")
    call_command("export_ssh_ca", "--path", "bastion-ssh", "--out", str(tmp_path / "ca.pub"))
    call_command("export_ssh_krl", "--path", "bastion-ssh", "--out", str(tmp_path / "r.krl"))
    assert (tmp_path / "ca.pub").read_text().strip() == bastion.ssh_ca.ssh_public_line()
    assert _revoked(tmp_path / "r.krl", certificate, tmp_path)
    with pytest.raises(CommandError, match="Unknown SSH path 'nope'. The SSH paths: bastion-ssh"):
        call_command("export_ssh_ca", "--path", "nope", "--out", str(tmp_path / "x"))
    with pytest.raises(CommandError, match=r"has no SSH path 'nope' \(its SSH paths: bastion-ssh"):
        call_command("export_ssh_krl", "--path", "nope", "--out", str(tmp_path / "x"))


def test_a_revoked_ca_is_listed_as_untrusted_and_no_longer_served(ssh_paths, tmp_path):
    bastion, _ = ssh_paths
    services.key_revoke(kid=bastion.ssh_ca.kid, reason="leaked")
    entry = bundle_latest().document["payload"]["ssh"][0]
    assert entry["path"] == "bastion-ssh" and entry["trusted"] is False
    response = Client().get("/trust/ssh/bastion-ssh/ca.pub")
    assert response.status_code == 410 and b"revoked" in response.content
    with pytest.raises(CommandError, match="is revoked: give the path a new CA first"):
        call_command("export_ssh_ca", "--path", "bastion-ssh", "--out", str(tmp_path / "x"))
