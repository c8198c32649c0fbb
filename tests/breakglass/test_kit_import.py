"""kit_import: each journal mint becomes one kit grant, audited, announced and reviewed."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from breakglass.access.kits import kit_journal_import
from breakglass.access.lifecycle import grant_review_close, grant_revoke
from breakglass.access.models import Grant
from breakglass.access.selectors import grants_review_queue
from breakglass.audit.models import AuditEvent
from breakglass.core.kit import (
    journal_append,
    journal_record,
    kit_key_rebuild,
    kit_load,
    kit_ssh_certificate,
    kit_ssh_claims,
    kit_token_claims,
    share_check,
)
from breakglass.keys.kits import KitRefused, kit_create
from breakglass.keys.selectors import bundle_current
from breakglass.outbox.models import OutboxMessage
from breakglass.project.metrics import _grant_metrics
from tests.breakglass.conftest import path_make


@pytest.fixture
def sealed(trust, sso_path):
    kit, _, shares = kit_create(
        kit_id="kit-ops",
        audiences=["sso"],
        scopes=["admin"],
        max_lifetime_minutes=60,
        custodians=[("Alice", None), ("Bob", None), ("Carol", None)],
        threshold=2,
    )
    certified = kit_load(kit.document, None)
    key = kit_key_rebuild(certified, [share_check(certified, s) for s in shares[:2]])
    return kit, certified, key


@pytest.fixture
def sso_path(db):
    return path_make("sso-backup", service="sso", scopes=("read", "admin"))


def offline_mint(journal, certified, key, *, subject="rita-responder", reason="SSO down"):
    """What `breakglass kit mint` does on a custodian's laptop."""
    claims = kit_token_claims(
        certified,
        audience="sso",
        scopes=["admin"],
        minutes=30,
        subject=subject,
        custodians=["Alice", "Bob"],
        now=int(timezone.now().timestamp()),
    )
    journal_append(
        str(journal),
        lambda prev: journal_record(certified, key, claims=claims, reason=reason, prev=prev),
    )
    return claims


def test_each_mint_becomes_one_kit_grant_awaiting_review(
    sealed, tmp_path, responder, approver, second_approver
):
    kit, certified, key = sealed
    journal = tmp_path / "journal.log"
    first = offline_mint(journal, certified, key)
    offline_mint(journal, certified, key, subject="someone-unknown", reason="DB too")
    result = kit_journal_import(data=journal.read_bytes())
    assert len(result.imported) == 2 and result.already == 0
    grant = Grant.objects.get(jti=first["jti"])
    assert grant.kit == kit and grant.emergency and grant.review_open
    assert grant.requester == responder and grant.path.slug == "sso-backup"
    assert grant.scopes == ["admin"] and grant.state == Grant.State.ISSUED
    assert "[kit kit-ops, for rita-responder] SSO down" == grant.reason
    assert list(grants_review_queue()).count(grant) == 1
    event = AuditEvent.objects.get(action="grant.kit_imported", object_id=str(grant.pk))
    assert event.data["custodians"] == ["Alice", "Bob"]
    # Approvers of the path and the security contacts hear of it through the outbox.
    mails = OutboxMessage.objects.filter(source=f"breakglass.grant:{grant.pk}")
    assert sorted(mails.values_list("recipient", flat=True)) == [
        "alex-approver@example.test",
        "bea-approver@example.test",
        "security@example.test",
    ]
    assert "SEALED KIT kit-ops used" in mails.first().payload["subject"]
    kit.refresh_from_db()
    assert kit.rekey_needed_at is not None
    issued = next(_grant_metrics(timezone.now()))  # /metrics counts them as kit grants
    assert {s.labels["kind"]: s.value for s in issued.samples}["kit"] == 2
    grant_review_close(grant=grant, reviewer=approver, notes="SSO outage, justified")


def test_running_kit_import_twice_records_each_entry_once(sealed, tmp_path, capsys):
    kit, certified, key = sealed
    journal = tmp_path / "journal.log"
    offline_mint(journal, certified, key)
    call_command("kit_import", "--journal", str(journal))
    events = AuditEvent.objects.count()
    messages = OutboxMessage.objects.count()
    call_command("kit_import", "--journal", str(journal))
    assert "0 new, 1 already recorded" in capsys.readouterr().out
    assert Grant.objects.filter(kit=kit).count() == 1
    assert (AuditEvent.objects.count(), OutboxMessage.objects.count()) == (events, messages)
    # A later mint appended to the same journal is picked up, the first is not repeated.
    offline_mint(journal, certified, key)
    assert len(kit_journal_import(data=journal.read_bytes()).imported) == 1
    assert Grant.objects.filter(kit=kit).count() == 2


def test_an_expired_mint_is_recorded_as_expired_but_still_reviewed(sealed, tmp_path):
    kit, certified, key = sealed
    journal = tmp_path / "journal.log"
    claims = offline_mint(journal, certified, key)
    with time_machine.travel(timezone.now() + timedelta(days=3)):
        kit_journal_import(data=journal.read_bytes())
    grant = Grant.objects.get(jti=claims["jti"])
    assert grant.state == Grant.State.EXPIRED and grant.review_open


@pytest.mark.parametrize(
    "tamper, message",
    [
        (
            lambda lines: [lines[0].replace("SSO down", "nothing to see")],
            "signature does not verify",
        ),
        (lambda lines: lines[1:], "does not follow the line before it"),
        (lambda lines: ["not json"], "not a kit journal"),
    ],
    ids=["edited", "line removed", "garbage"],
)
def test_a_tampered_journal_imports_nothing(sealed, tmp_path, tamper, message):
    kit, certified, key = sealed
    journal = tmp_path / "journal.log"
    offline_mint(journal, certified, key)
    offline_mint(journal, certified, key)
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(tamper(lines)) + "\n")
    with pytest.raises(KitRefused, match=message):
        kit_journal_import(data=journal.read_bytes())
    assert not Grant.objects.filter(kit=kit).exists()


def test_kit_import_names_a_missing_file_or_an_unknown_kit_in_one_line(sealed, tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("kit_import", "--journal", str(tmp_path / "missing.log"))
    kit, certified, key = sealed
    journal = tmp_path / "journal.log"
    offline_mint(journal, certified, key)
    record = json.loads(journal.read_text())
    record["kit"] = "kit-elsewhere"
    journal.write_text(json.dumps(record) + "\n")
    with pytest.raises(CommandError, match="no kit named 'kit-elsewhere'"):
        call_command("kit_import", "--journal", str(journal))


@pytest.fixture
def sealed_ssh(trust, sso_path):
    """A kit covering the sso token path's service and the bastion-ssh SSH path."""
    path_make("bastion-ssh", service="bastion", method="ssh-certificate")
    kit, _, shares = kit_create(
        kit_id="kit-ssh",
        audiences=["sso"],
        scopes=["admin"],
        max_lifetime_minutes=60,
        custodians=[("Alice", None), ("Bob", None), ("Carol", None)],
        threshold=2,
        ssh_paths=["bastion-ssh"],
    )
    certified = kit_load(kit.document, None)
    key = kit_key_rebuild(certified, [share_check(certified, s) for s in shares[1:]])
    return kit, certified, key


RESPONDER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIvgwWM+Jy4z/8HkOTBZ8N+fsDI0yfSSH6RF0snnw4H9"


def offline_ssh_mint(journal, certified, key, *, subject="rita-responder"):
    """What `breakglass kit mint --ssh-path ... --ssh-public-key ...` does on a laptop."""
    claims = kit_ssh_claims(
        certified,
        path="bastion-ssh",
        public_key=RESPONDER_KEY + " rita@laptop",
        principals=[],
        minutes=20,
        subject=subject,
        custodians=["Bob", "Carol"],
        now=int(timezone.now().timestamp()),
    )
    kit_ssh_certificate(certified, key, claims)
    journal_append(
        str(journal),
        lambda prev: journal_record(
            certified, key, claims=claims, reason="bastion down", prev=prev
        ),
    )
    return claims


def test_ssh_mints_become_kit_grants_on_their_ssh_path_once(
    sealed_ssh, tmp_path, responder, capsys
):
    kit, certified, key = sealed_ssh
    journal = tmp_path / "journal.log"
    first = offline_ssh_mint(journal, certified, key)
    offline_mint(journal, certified, key)  # a token from the same kit, same journal
    call_command("kit_import", "--journal", str(journal))
    grant = Grant.objects.get(jti=first["jti"])
    assert grant.kit == kit and grant.path.slug == "bastion-ssh" and grant.is_ssh
    assert grant.requester == responder and grant.review_open and grant.emergency
    assert grant.ssh_public_key == RESPONDER_KEY and grant.scopes == []
    assert grant.lifetime_minutes == 20
    event = AuditEvent.objects.get(action="grant.kit_imported", object_id=str(grant.pk))
    assert event.data["ssh"] == first["ssh"] and "aud" not in event.data
    assert Grant.objects.filter(kit=kit).count() == 2
    mail = OutboxMessage.objects.filter(source=f"breakglass.grant:{grant.pk}").first()
    assert "SEALED KIT kit-ssh used: rita-responder on bastion-ssh" in mail.payload["subject"]

    events, messages = AuditEvent.objects.count(), OutboxMessage.objects.count()
    call_command("kit_import", "--journal", str(journal))
    assert "0 new, 2 already recorded" in capsys.readouterr().out
    assert (AuditEvent.objects.count(), OutboxMessage.objects.count()) == (events, messages)


def test_revoking_a_kit_ssh_grant_puts_no_serial_of_the_paths_own_ca_in_its_krl(
    sealed_ssh, tmp_path, approver, django_capture_on_commit_callbacks
):
    """Its certificate was signed by the kit's CA for the path, not by the path's CA:
    listing the grant id under the path's CA would revoke nothing it signed."""
    _, certified, key = sealed_ssh
    journal = tmp_path / "journal.log"
    claims = offline_ssh_mint(journal, certified, key)
    kit_journal_import(data=journal.read_bytes())
    grant = Grant.objects.get(jti=claims["jti"])
    # The revocation is published right after its transaction commits.
    with django_capture_on_commit_callbacks(execute=True):
        grant_revoke(grant=grant, actor=approver, reason="done")
    payload = bundle_current()["payload"]
    assert claims["jti"] in {entry["jti"] for entry in payload["revoked_jti"]}
    (entry,) = [e for e in payload["ssh"] if e["path"] == "bastion-ssh"]
    assert entry["revoked_serials"] == []
