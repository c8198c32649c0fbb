"""The database owner cuts events out of the middle of the chain and re-chains the rest
with the public SHA-256. The checkpoint file must never witness that forged head, and
`verify_audit` must keep saying BROKEN however many checkpoints come after.

The forgery is plain SQL, as the owner would type it into psql: the append-only trigger
is switched off with `session_replication_role`, which only a superuser or the table's
owner may set.
"""

import hashlib
import json
import os

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection, transaction

from breakglass.audit.models import AuditEvent
from breakglass.audit.selectors import audit_chain_verify, audit_checkpoints_all
from breakglass.audit.services import CheckpointRefused, audit_checkpoint_record, audit_record
from breakglass.audit.tasks import audit_checkpoint_task
from breakglass.outbox.models import OutboxMessage
from tests.foundation.test_audit_verify import audit_log_emptied

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def checkpoint_file(settings, tmp_path):
    settings.BREAKGLASS_AUDIT_CHECKPOINT_FILE = tmp_path / "checkpoints.jsonl"
    settings.BREAKGLASS_SECURITY_CONTACTS = ["security@example.test"]
    return settings.BREAKGLASS_AUDIT_CHECKPOINT_FILE


def _canonical(value) -> bytes:
    # The forger's own canonical JSON, written from the public documentation.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _forge_by_sql(*, delete_seqs: list[int]) -> None:
    """Delete events and re-chain every later one with raw SQL, renumbering seq so the
    chain has no gap: exactly what someone holding the database owner's rights can do."""
    assert connection.vendor == "postgresql", "the forgery is plain PostgreSQL"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = ANY(%s)", [delete_seqs])
        cursor.execute(
            "SELECT id, seq, created_at, actor_id, actor_label, action, object_type, "
            "object_id, data FROM audit_auditevent ORDER BY seq"
        )
        rows = cursor.fetchall()
        # Move every row out of the way first: seq and hash are unique.
        cursor.execute("UPDATE audit_auditevent SET seq = -seq, hash = 'x' || id")
        prev = "0" * 64
        for new_seq, row in enumerate(rows, start=1):
            pk, _, created_at, actor_id, actor, action, otype, oid, data = row
            record = {
                "seq": new_seq,
                "created_at": created_at.isoformat(),
                "actor_id": actor_id,
                "actor": actor,
                "action": action,
                "object_type": otype,
                "object_id": oid,
                "data": json.loads(data) if isinstance(data, str) else data,
            }
            digest = hashlib.sha256(prev.encode() + b"\n" + _canonical(record)).hexdigest()
            cursor.execute(
                "UPDATE audit_auditevent SET seq = %s, prev_hash = %s, hash = %s WHERE id = %s",
                [new_seq, prev, digest, pk],
            )
            prev = digest


@pytest.fixture
def ritas_emergency(responder, approver):
    """Eight events, three of them rita's emergency credential, then a checkpoint."""
    audit_log_emptied()
    audit_record(action="user.login", actor=approver)
    audit_record(action="user.login", actor=responder)
    audit_record(action="grant.self_issued", actor=responder, data={"path": "sso-break-glass"})
    audit_record(action="ssh_certificate.issued", actor=responder, data={"serial": 7})
    audit_record(action="grant.issued", actor=responder, data={"grant": 42})
    audit_record(action="user.logout", actor=responder)
    audit_record(action="user.login", actor=approver)
    audit_record(action="user.logout", actor=approver)
    audit_checkpoint_record()
    assert audit_checkpoints_all()[-1][0] == 8


pg_only = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="the forgery is plain PostgreSQL",
)


@pg_only
def test_the_forged_chain_links_but_verify_audit_says_broken(ritas_emergency, capsys):
    _forge_by_sql(delete_seqs=[3, 4, 5])
    assert audit_chain_verify().intact  # the forged chain, alone, is a valid chain
    with pytest.raises(SystemExit):
        call_command("verify_audit")
    assert "BROKEN at event 8" in capsys.readouterr().err


@pg_only
def test_the_checkpoint_task_refuses_to_witness_a_forged_head(ritas_emergency, checkpoint_file):
    recorded = checkpoint_file.read_bytes()
    _forge_by_sql(delete_seqs=[3, 4, 5])
    audit_record(action="user.login", actor=None)  # life goes on after the forgery

    with pytest.raises(CheckpointRefused, match="checkpoint #8"):
        audit_checkpoint_record()

    assert checkpoint_file.read_bytes() == recorded
    alarm = AuditEvent.objects.get(action="audit.checkpoint_refused")
    assert alarm.data["checkpoint_seq"] == 8
    emails = OutboxMessage.objects.filter(source="audit.checkpoint:8")
    assert [message.recipient for message in emails] == ["security@example.test"]
    assert "rewritten history" in emails[0].payload["body"]


@pg_only
def test_verify_audit_stays_broken_after_many_checkpoint_runs(ritas_emergency, capsys):
    _forge_by_sql(delete_seqs=[3, 4, 5])
    for _ in range(3):
        audit_checkpoint_task()  # refused, logged, never raises out of the worker
    with pytest.raises(SystemExit) as exited:
        call_command("verify_audit")
    assert exited.value.code == 1
    # One alarm and one e-mail per forgery, however often the task runs.
    assert AuditEvent.objects.filter(action="audit.checkpoint_refused").count() == 1
    assert OutboxMessage.objects.filter(source="audit.checkpoint:8").count() == 1


@pg_only
def test_a_forgery_that_keeps_the_length_is_refused_too(ritas_emergency):
    # Cut three events out, then pad the end with three innocent ones: the head seq is
    # back above the checkpoint, but event 8 no longer has the recorded hash.
    _forge_by_sql(delete_seqs=[3, 4, 5])
    for _ in range(4):
        audit_record(action="user.login")
    with pytest.raises(CheckpointRefused, match="event 8 no longer has the hash"):
        audit_checkpoint_record()


def test_verify_audit_checks_every_checkpoint_not_only_the_last(ritas_emergency, checkpoint_file):
    # A file already holding a forged head after the true one (written by an older
    # release): the true, earlier checkpoint still makes the chain fail.
    true_head = audit_checkpoints_all()[-1]
    with open(checkpoint_file, "ab") as fh:
        fh.write(b'{"at":"x","hash":"' + b"e" * 64 + b'","seq":5}\n')
    status = audit_chain_verify(checkpoints=audit_checkpoints_all())
    assert (status.intact, status.broken_seq) == (False, 5)
    assert audit_chain_verify(checkpoint=true_head).intact


def test_an_honest_chain_keeps_getting_checkpoints(ritas_emergency, checkpoint_file):
    audit_record(action="user.login")
    assert audit_checkpoint_record()[0] == 9
    assert [seq for seq, _ in audit_checkpoints_all()] == [8, 9]
    assert not AuditEvent.objects.filter(action="audit.checkpoint_refused").exists()
    assert mail.outbox == []
