"""The kit's public part on the server: registered, carried by every bundle, retired."""

import json
import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from breakglass.audit.models import AuditEvent
from breakglass.core import RetiredKit, verify_bundle, verify_token
from breakglass.core.jws import jws_sign
from breakglass.core.kit import kit_load, share_check
from breakglass.core.kit_cli import check_code
from breakglass.keys import selectors
from breakglass.keys.kits import KitRefused, kit_create, kit_custodian_check, kit_retire
from breakglass.keys.models import Kit
from breakglass.outbox.models import OutboxMessage
from devkit.keykit import seeded_key

CUSTODIANS = [("Alice", None), ("Bob", None), ("Carol", None)]


def create(kit_id="kit-ops", **options):
    options.setdefault("audiences", ["sso"])
    options.setdefault("scopes", ["ssh:login"])
    options.setdefault("max_lifetime_minutes", 60)
    options.setdefault("custodians", CUSTODIANS)
    options.setdefault("threshold", 2)
    return kit_create(kit_id=kit_id, **options)


def test_console_creation_returns_pages_once_and_stores_only_the_public_part(
    trust, settings, django_capture_on_commit_callbacks
):
    settings.BREAKGLASS_SECURITY_CONTACTS = ["security@example.test"]
    with django_capture_on_commit_callbacks(execute=True):
        kit, pages, shares = create()
    assert len(pages) == 3 and "Custodian: Bob" in pages[1]
    assert all(word in pages[1].split() for word in shares[1].split())
    stored = json.dumps(kit.document) + "".join(
        bytes(c.check_key_encrypted).hex() for c in kit.custodians.all()
    )
    assert not any(share.split()[5] in stored for share in shares)
    assert AuditEvent.objects.filter(action="kit.registered", object_id=str(kit.pk)).count() == 1
    (mail,) = OutboxMessage.objects.filter(source=f"keys.kit:{kit.pk}")
    assert mail.recipient == "security@example.test"
    assert "New sealed kit kit-ops" in mail.payload["subject"]
    # The root threshold certifies it, and the published bundle carries it.
    certified = kit_load(kit.document, selectors.roots_export())
    assert len(certified.signed_by) == 2
    bundle = verify_bundle(
        json.loads(selectors.published_bundle_path().read_text()), selectors.roots_export()
    )
    assert certified.kid in bundle.kits


def test_a_kit_id_is_used_once(trust):
    create()
    with pytest.raises(KitRefused, match="exists already"):
        create()


def test_retiring_a_kit_revokes_its_key_in_the_next_bundle(trust):
    kit, _, _ = create()
    kit_retire(kit=kit, reason="shares were exposed")
    payload = selectors.bundle_current()["payload"]
    assert kit.kid in payload["revoked_kids"]
    bundle = verify_bundle(selectors.bundle_current(), selectors.roots_export())

    token = jws_sign({"kit": "kit-ops"}, private_key=seeded_key("x"), kid=kit.kid)
    with pytest.raises(RetiredKit):
        verify_token(token, bundle, audience="sso")
    assert kit_retire(kit=kit, reason="again").state == Kit.State.RETIRED
    assert AuditEvent.objects.filter(action="kit.retired").count() == 1


def test_a_custodian_check_code_is_recorded_without_the_share(trust):
    kit, _, shares = create()
    certified = kit_load(kit.document, None)
    share = share_check(certified, shares[2])
    now = int(timezone.now().timestamp())
    custodian = kit_custodian_check(code=check_code(certified, share, now=now))
    assert custodian.name == "Carol" and custodian.last_checked_at is not None
    assert AuditEvent.objects.filter(action="kit.custodian_checked").count() == 1
    forged = check_code(certified, share, now=now)[:-4] + "0000"
    with pytest.raises(KitRefused, match="does not match"):
        kit_custodian_check(code=forged)
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        with pytest.raises(KitRefused, match="older than a day"):
            kit_custodian_check(code=check_code(certified, share, now=now))


def test_offline_creation_then_root_signing_then_kit_register(trust, tmp_path, settings):
    """The air-gapped route: breakglass kit create, roots sign, kit_register, export_kit."""
    from breakglass.keys.models import SigningKey
    from breakglass.keys.services import _key_private

    out = tmp_path / "kit.json"
    made = subprocess.run(
        [sys.executable, "-m", "breakglass.core", "kit", "create", "--kit", "kit-offline",
         "--issuer", settings.BREAKGLASS_ISSUER, "--custodian", "Alice", "--custodian", "Bob",
         "--threshold", "2", "--audience", "sso", "--scope", "ssh:login",
         "--out", out, "--shares-dir", tmp_path / "shares"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in (tmp_path / "shares").iterdir()) == ["share-1.txt", "share-2.txt"]
    # Two root holders sign with the offline tool, each with their own key file.
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    for number, root in enumerate(SigningKey.objects.filter(purpose="root")[:2]):
        pem = tmp_path / f"root-{number}.pem"
        pem.write_bytes(
            _key_private(root).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        )
        signed = subprocess.run(
            [sys.executable, "-m", "breakglass.core.signing", "sign", "--key", pem, out],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert signed.returncode == 0, signed.stderr
    call_command("kit_register", str(out))
    kit = Kit.objects.get(kit_id="kit-offline")
    assert kit.custodians.count() == 2 and all(
        bytes(c.check_key_encrypted) for c in kit.custodians.all()
    )
    call_command("export_kit", "--kit", "kit-offline", "--out", str(tmp_path / "export.json"))
    exported = json.loads((tmp_path / "export.json").read_text())
    assert set(exported) == {"payload", "signatures"}  # no check keys leave the server
    with pytest.raises(CommandError, match="exists already"):
        call_command("kit_register", str(out))


def test_a_kit_covering_an_ssh_path_carries_the_paths_policy_and_hosts_get_its_ca(
    trust, django_capture_on_commit_callbacks
):
    from breakglass.core.krl import trusted_ca_file
    from tests.breakglass.conftest import path_make

    bastion = path_make("bastion-ssh", service="bastion", method="ssh-certificate")
    bastion.ssh_source_addresses = ["10.20.0.0/16"]
    bastion.save()
    with django_capture_on_commit_callbacks(execute=True):
        kit, _, _ = create(ssh_paths=["bastion-ssh"])
    (entry,) = kit.document["payload"]["ssh"]
    assert {k: v for k, v in entry.items() if k != "ca"} == {
        "path": "bastion-ssh",
        **bastion.ssh_certificate_policy,
    }
    assert entry["ca"].startswith("ssh-ed25519 ") and kit.ssh_paths == ["bastion-ssh"]
    event = AuditEvent.objects.get(action="kit.registered")
    assert event.data["ssh_paths"] == ["bastion-ssh"]
    # The published ca.pub (the bytes `breakglass sync` writes) trusts the kit beside the path.
    published = (selectors.published_ssh_dir("bastion-ssh") / "ca.pub").read_text()
    assert published.splitlines() == [
        bastion.ssh_ca.ssh_public_line(),
        f"{entry['ca']} breakglass kit kit-ops for bastion-ssh",
    ]
    assert published.encode() == trusted_ca_file(
        selectors.bundle_current()["payload"], ["bastion-ssh"]
    )
    assert Client().get("/trust/ssh/bastion-ssh/ca.pub").content == published.encode()
    with pytest.raises(KitRefused, match="not an active SSH path with a CA: sso-backup"):
        create(kit_id="kit-two", ssh_paths=["sso-backup"])


def test_an_ssh_policy_changed_after_the_kit_flags_it_and_an_offline_kit_that_differs_is_refused(
    trust, tmp_path, settings
):
    from tests.breakglass.conftest import path_make

    bastion = path_make("bastion-ssh", service="bastion", method="ssh-certificate")
    create(ssh_paths=["bastion-ssh"])
    assert selectors.kits_status()[0].problems == [
        "only 0 of 2 needed custodians checked their share in the last 90 days"
    ]
    bastion.ssh_force_command = "/usr/local/bin/restart-dns"
    bastion.save()
    (status,) = selectors.kits_status()
    assert status.problems[-1] == (
        "SSH: its policy for bastion-ssh is not the path's (force_command: the path has "
        "'/usr/local/bin/restart-dns', the kit ''): make a new kit with the paths' policy and "
        "retire this one"
    )

    # The air-gapped route takes the policy the server exports; a kit made with an older
    # (here: weaker) policy than the path's is refused at registration.
    policy = tmp_path / "ssh-policy.json"
    call_command("export_ssh_policy", "--path", "bastion-ssh", "--out", str(policy))
    assert json.loads(policy.read_text())["ssh"][0]["force_command"] == (
        "/usr/local/bin/restart-dns"
    )
    document = json.loads(policy.read_text())
    document["ssh"][0]["force_command"] = ""
    policy.write_text(json.dumps(document))
    made = subprocess.run(
        [sys.executable, "-m", "breakglass.core", "kit", "create", "--kit", "kit-offline",
         "--issuer", settings.BREAKGLASS_ISSUER, "--custodian", "Alice", "--custodian", "Bob",
         "--threshold", "2", "--audience", "sso", "--scope", "ssh:login",
         "--ssh-policy", policy, "--out", tmp_path / "kit.json",
         "--shares-dir", tmp_path / "shares"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "SSH path bastion-ssh" in (tmp_path / "shares" / "share-1.txt").read_text()
    with pytest.raises(CommandError, match="its policy for bastion-ssh is not the path's"):
        call_command("kit_register", str(tmp_path / "kit.json"))
    assert not Kit.objects.filter(kit_id="kit-offline").exists()
    with pytest.raises(CommandError, match="not an active SSH path with a CA: nope"):
        call_command("export_ssh_policy", "--path", "nope", "--out", str(policy))
