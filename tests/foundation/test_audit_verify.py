"""verify_audit must notice every way of rewriting history: edited, deleted, inserted and
reordered events, and (given a checkpoint) events cut off the end.

On PostgreSQL the tampering below first switches off the append-only trigger, exactly
as an attacker holding the database owner's rights could (`session_replication_role`).
"""

from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from breakglass.audit.models import AuditEvent
from breakglass.audit.selectors import audit_chain_verify
from breakglass.audit.services import audit_record
from breakglass.core.hashchain import GENESIS_HASH, chain_hash

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_checkpoint_file(settings, tmp_path):
    """Each test gets its own (empty) record of chain heads."""
    settings.BREAKGLASS_AUDIT_CHECKPOINT_FILE = tmp_path / "checkpoints.jsonl"


def audit_log_emptied() -> None:
    """Start the chain again at seq 1 after the fixtures' own events (creating people is
    audited too), so a test can name events by number."""
    with owner_tampering():
        AuditEvent.objects.all().delete()


@pytest.fixture
def five_events(responder):
    audit_log_emptied()
    return [
        audit_record(action=f"test.step{n}", actor=responder, data={"n": n}) for n in range(1, 6)
    ]


@contextmanager
def owner_tampering():
    """Run ORM writes that the append-only trigger would refuse, as a DB owner can."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = replica")
        yield


def _rehash_from(seq: int) -> None:
    """What a careful forger does: recompute every hash from `seq` to the end."""
    prev = AuditEvent.objects.get(seq=seq - 1).hash if seq > 1 else GENESIS_HASH
    for event in AuditEvent.objects.filter(seq__gte=seq).order_by("seq"):
        digest = chain_hash(prev, event.chain_record())
        AuditEvent.objects.filter(pk=event.pk).update(prev_hash=prev, hash=digest)
        prev = digest


def test_an_untouched_log_is_intact(five_events):
    status = audit_chain_verify()
    assert status.intact
    assert (status.count, status.head_seq, status.head_hash) == (5, 5, five_events[-1].hash)


def test_an_empty_log_is_intact():
    assert audit_chain_verify().intact


def test_an_edited_event_is_named(five_events):
    with owner_tampering():
        AuditEvent.objects.filter(seq=3).update(data={"n": 333})
    status = audit_chain_verify()
    assert not status.intact
    assert status.broken_seq == 3
    assert "edited" in status.reason


def test_a_changed_actor_label_is_noticed(five_events):
    with owner_tampering():
        AuditEvent.objects.filter(seq=2).update(actor_label="someone-else")
    assert audit_chain_verify().broken_seq == 2


def test_a_deleted_event_is_noticed_at_the_gap(five_events):
    with owner_tampering():
        AuditEvent.objects.filter(seq=2).delete()
    status = audit_chain_verify()
    assert status.broken_seq == 3
    assert "missing" in status.reason


def test_deleting_the_first_event_is_noticed(five_events):
    with owner_tampering():
        AuditEvent.objects.filter(seq=1).delete()
    status = audit_chain_verify()
    assert status.broken_seq == 2
    assert "does not link" in status.reason


def test_a_forged_event_inserted_in_the_middle_is_noticed(five_events):
    with owner_tampering():
        for seq in (5, 4, 3):  # make room at 3, highest first for the unique seq
            AuditEvent.objects.filter(seq=seq).update(seq=seq + 1)
        forged = AuditEvent(
            seq=3,
            created_at=five_events[2].created_at,
            actor_label="mallory",
            action="grant.approved",
            prev_hash=five_events[1].hash,
        )
        forged.hash = chain_hash(forged.prev_hash, forged.chain_record())
        forged.save(force_insert=True)
    status = audit_chain_verify()
    assert not status.intact
    assert status.broken_seq == 4


def test_a_forged_event_appended_without_the_right_hash_is_noticed(five_events):
    with owner_tampering():
        AuditEvent.objects.create(
            seq=6,
            created_at=five_events[-1].created_at,
            actor_label="mallory",
            action="grant.approved",
            prev_hash=five_events[-1].hash,
            hash="f" * 64,
        )
    status = audit_chain_verify()
    assert (status.broken_seq, "edited" in status.reason) == (6, True)


def test_two_swapped_events_are_noticed(five_events):
    with owner_tampering():
        AuditEvent.objects.filter(seq=3).update(seq=-3)
        AuditEvent.objects.filter(seq=4).update(seq=3)
        AuditEvent.objects.filter(seq=-3).update(seq=4)
    status = audit_chain_verify()
    assert status.broken_seq == 3
    assert "does not link" in status.reason


def test_a_cut_off_tail_needs_a_checkpoint_to_be_noticed(five_events):
    checkpoint = (5, five_events[-1].hash)
    with owner_tampering():
        AuditEvent.objects.filter(seq__gte=4).delete()
    # The shorter chain is internally consistent: that is the limit of a bare chain.
    assert audit_chain_verify().intact
    status = audit_chain_verify(checkpoint=checkpoint)
    assert not status.intact
    assert status.broken_seq == 5
    assert "ends at event 3" in status.reason


def test_a_fully_rehashed_rewrite_is_caught_by_the_checkpoint(five_events):
    checkpoint = (5, five_events[-1].hash)
    with owner_tampering():
        AuditEvent.objects.filter(seq=2).update(action="test.innocent")
        _rehash_from(2)
    assert audit_chain_verify().intact
    status = audit_chain_verify(checkpoint=checkpoint)
    assert (status.broken_seq, "checkpoint" in status.reason) == (5, True)


def test_verify_audit_exits_zero_and_reports_the_head(five_events, capsys):
    call_command("verify_audit")
    assert f"head #5 {five_events[-1].hash}" in capsys.readouterr().out


def test_verify_audit_exits_one_and_names_the_first_broken_event(five_events, capsys):
    with owner_tampering():
        AuditEvent.objects.filter(seq=4).update(action="test.forged")
    with pytest.raises(SystemExit) as exited:
        call_command("verify_audit")
    assert exited.value.code == 1
    assert "BROKEN at event 4: content does not match its hash (edited)" in capsys.readouterr().err


def test_verify_audit_checks_a_checkpoint(five_events, capsys):
    call_command("verify_audit", checkpoint=f"5:{five_events[-1].hash}")
    with pytest.raises(SystemExit) as exited:
        call_command("verify_audit", checkpoint=f"9:{five_events[-1].hash}")
    assert exited.value.code == 1
    assert "event 9: missing" in capsys.readouterr().err


def test_verify_audit_explains_a_malformed_checkpoint(five_events):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="SEQ:SHA256HEX"):
        call_command("verify_audit", checkpoint="latest")
