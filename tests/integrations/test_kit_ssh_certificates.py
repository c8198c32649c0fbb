"""SSH certificates from the sealed kit against a real sshd, configured as documented
(docs/integrations/ssh-certificates.md), while Breakglass is down.

Three days ago Breakglass made a kit covering two SSH paths and published its files;
the host synced them (the single-file verifier under Debian's python3). Then Breakglass
stopped: the published files are no longer served, the database is unreachable from the
custodians' laptop, and the bundle the host holds has expired. The custodians mint with
`breakglass kit mint`, and sshd decides with the files it had.
"""

from __future__ import annotations

import functools
import json
import subprocess
import threading
from datetime import datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from breakglass.access.kits import kit_journal_import
from breakglass.access.models import Grant
from breakglass.core.kit import kit_ssh_certificate, kit_ssh_claims
from breakglass.keys import services
from breakglass.keys.kits import kit_create, kit_export, kit_retire
from breakglass.keys.selectors import roots_export
from tests.breakglass.conftest import path_make
from tests.integrations.hosts import free_port
from tests.integrations.sshd import client_key
from tests.verifier.sealed import cli, kit_key, make_kit, ssh_policy

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CUSTODIANS = [("Alice", None), ("Bob", None), ("Carol", None)]


class PublishedFiles:
    """Breakglass's published trust files (TRUST_PUBLISH_DIR) served at /trust/ on one
    loopback port, the way `breakglass sync` fetches them; stopped during the outage."""

    def __init__(self, www: Path):
        self.www = www
        self.url = f"http://127.0.0.1:{free_port()}"
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        handler = functools.partial(_QuietHandler, directory=str(self.www))
        self.server = ThreadingHTTPServer(("127.0.0.1", int(self.url.rsplit(":", 1)[1])), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def before_the_outage(settings, tmp_path, sshd, verifier_command):
    """The kit and the bastion host's files, all made three days ago."""
    www = tmp_path / "www"
    settings.TRUST_PUBLISH_DIR = www / "trust"
    then = timezone.now() - timedelta(days=3)
    with time_machine.travel(then, tick=False):
        services.keys_bootstrap()
        path_make("bastion-ssh", service="bastion", method="ssh-certificate")
        path_make("database-admin-ssh", service="db", method="ssh-certificate")
        kit, _, shares = kit_create(
            kit_id="kit-ops",
            audiences=["sso"],
            scopes=["admin"],
            max_lifetime_minutes=60,
            custodians=CUSTODIANS,
            threshold=2,
            ssh_paths=["bastion-ssh", "database-admin-ssh"],
        )
    (tmp_path / "roots.json").write_text(json.dumps(roots_export()))
    (tmp_path / "kit.json").write_text(json.dumps(kit_export(kit=kit)))
    host = sshd.start(path="bastion-ssh", principals=["bg-bastion-ssh"])
    published = PublishedFiles(www)

    def sync(at: datetime) -> subprocess.CompletedProcess:
        """What the host's timer runs (docs/verifier.md), at time `at`."""
        return subprocess.run(
            [*verifier_command, "sync", "--url", published.url,
             "--roots", str(tmp_path / "roots.json"), "--dir", str(host.trust_dir),
             "--ssh-path", "bastion-ssh", "--now", str(int(at.timestamp()))],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    published.start()
    try:
        synced = sync(then + timedelta(minutes=1))
    finally:
        published.stop()  # Breakglass is down from here on
    assert synced.returncode == 0, synced.stderr
    try:
        yield {
            "kit": kit,
            "shares": shares,
            "host": host,
            "sync": sync,
            "published": published,
        }
    finally:
        published.stop()


def mint(folder: Path, shares: list[str]) -> tuple[Path, subprocess.CompletedProcess]:
    """On a custodian's laptop (no Django settings, the database unreachable): the
    responder's key pair, and the certificate minted for it (on standard output)."""
    key, _ = client_key(folder)
    minted = cli(
        "kit", "mint", "--kit-file", folder / "kit.json", "--ssh-path", "bastion-ssh",
        "--ssh-public-key", f"{key}.pub", "--minutes", "20", "--subject", "rita",
        "--reason", "INC-7: the bastion and Breakglass are down",
        "--journal", folder / "journal.log", shares=shares,
    )  # fmt: skip
    return key, minted


def test_a_kit_certificate_logs_in_with_the_files_synced_before_the_outage(
    before_the_outage, tmp_path
):
    host = before_the_outage["host"]
    outage = before_the_outage["sync"](timezone.now())
    assert outage.returncode == 2 and "cannot reach" in outage.stderr  # nothing answers
    trusted = (host.trust_dir / "ssh" / "bastion-ssh" / "ca.pub").read_text().splitlines()
    assert len(trusted) == 2 and trusted[1].endswith(" breakglass kit kit-ops for bastion-ssh")
    bundle = json.loads((host.trust_dir / "bundle.json").read_text())["payload"]
    assert bundle["expires_at"] < timezone.now().timestamp()  # the host's bundle expired

    key, minted = mint(tmp_path, before_the_outage["shares"][1:])
    assert minted.returncode == 0, minted.stderr
    result = host.login(key=key, certificate=minted.stdout)
    assert result.accepted, result.stderr + host.log_text()
    assert result.stdout.strip() == host.user
    # sshd logs the key ID, which names the kit, the person and the mint.
    journal = json.loads((tmp_path / "journal.log").read_text())
    assert f"breakglass kit kit-ops rita jti={journal['jti']}" in host.log_text()

    # Breakglass is back: the journal becomes one kit grant on the path, once.
    assert len(kit_journal_import(data=(tmp_path / "journal.log").read_bytes()).imported) == 1
    assert kit_journal_import(data=(tmp_path / "journal.log").read_bytes()).already == 1
    grant = Grant.objects.get(jti=journal["jti"])
    assert grant.path.slug == "bastion-ssh" and grant.review_open


def test_sshd_refuses_certificates_of_another_kit_and_of_the_kits_other_path(
    before_the_outage, tmp_path
):
    host = before_the_outage["host"]
    # A kit this host never synced, covering a path of the same name.
    other, other_shares = make_kit(
        "kit-other", now=int(timezone.now().timestamp()), ssh=[ssh_policy("bastion-ssh")]
    )
    (tmp_path / "kit.json").write_text(json.dumps(other))
    key, minted = mint(tmp_path, other_shares[:2])
    assert minted.returncode == 0, minted.stderr
    assert not host.login(key=key, certificate=minted.stdout).accepted

    # The kit's own CA for database-admin-ssh, even with the bastion's principal: each
    # covered path has its own kit CA, and this host trusts only the bastion's.
    kit, kit_signing_key = kit_key(
        before_the_outage["kit"].document, before_the_outage["shares"][:2]
    )
    claims = kit_ssh_claims(
        kit, path="database-admin-ssh", public_key=Path(f"{key}.pub").read_text(),
        principals=[], minutes=20, subject="rita", custodians=["Alice", "Bob"],
        now=int(timezone.now().timestamp()),
    )  # fmt: skip
    claims["ssh"]["principals"] = ["bg-bastion-ssh"]
    forged = kit_ssh_certificate(kit, kit_signing_key, claims)
    result = host.login(key=key, certificate=forged)
    assert not result.accepted and "Permission denied" in result.stderr
    assert "Accepted" not in host.log_text()


def test_a_retired_kit_is_refused_after_one_sync_by_its_ca_line_and_by_the_krl_each(
    before_the_outage, tmp_path
):
    host = before_the_outage["host"]
    key, minted = mint(tmp_path, before_the_outage["shares"][:2])
    assert host.login(key=key, certificate=minted.stdout).accepted
    files = host.trust_dir / "ssh" / "bastion-ssh"
    krl_before = (files / "revoked.krl").read_bytes()

    # Breakglass is back; the kit is retired (its shares were typed on a laptop), and the
    # host syncs once.
    kit_retire(kit=before_the_outage["kit"], reason="used during INC-7: re-keyed")
    before_the_outage["published"].start()
    try:
        synced = before_the_outage["sync"](timezone.now())
    finally:
        before_the_outage["published"].stop()
    assert synced.returncode == 0, synced.stderr
    ca_lines = (files / "ca.pub").read_text().splitlines()
    assert ca_lines[1] == "# breakglass: kit kit-ops is retired (its CA is in the KRL)"
    krl_after = (files / "revoked.krl").read_bytes()
    refused = host.login(key=key, certificate=minted.stdout)
    assert not refused.accepted and "Permission denied" in refused.stderr

    def refusal(ca_pub: list[str], krl: bytes) -> str:
        """Log in with these two files in place; sshd's log lines about it."""
        (files / "ca.pub").write_text("".join(line + "\n" for line in ca_pub))
        (files / "revoked.krl").write_bytes(krl)
        mark = len(host.log_text())
        assert not host.login(key=key, certificate=minted.stdout).accepted
        return host.log_text()[mark:]

    # Each half alone refuses it. Without the kit's CA line, even with the KRL from before
    # the retirement, the CA is not trusted...
    assert "revoked" not in refusal(ca_lines, krl_before).lower()
    # ...and with the kit's CA line back (a ca.pub kept by hand, or restored from a
    # backup), sshd refuses a certificate whose signing CA key is in the KRL.
    (entry,) = [
        e for e in before_the_outage["kit"].document["payload"]["ssh"] if e["path"] == "bastion-ssh"
    ]
    log = refusal([ca_lines[0], entry["ca"]], krl_after)
    assert f"revoked by file {files / 'revoked.krl'}" in log
