"""verify_audit reads the log as a stream of columns (no model instances) and re-hashes
with a fast path: the verdicts are exactly those of the checked encoding, on a long
chain written in bulk as well as on one written event by event."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection, transaction

from breakglass.audit.models import AuditEvent
from breakglass.audit.selectors import CHAIN_READ_CHUNK, audit_chain_verify
from breakglass.audit.services import audit_record
from breakglass.core.hashchain import GENESIS_HASH, ChainBreak, chain_hash, verify_chain
from devkit.audit_bulk import audit_events_bulk_append

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_checkpoint_file(settings, tmp_path):
    settings.BREAKGLASS_AUDIT_CHECKPOINT_FILE = tmp_path / "checkpoints.jsonl"


def _tamper(sql: str, params: list) -> None:
    """As the database owner can: with the append-only trigger switched off."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)


@pytest.fixture
def long_chain(responder):
    """A chain longer than one streamed chunk: written events, bulk ones, written again."""
    assert connection.vendor == "postgresql", "the bulk path uses COPY"
    audit_record(action="test.before", actor=responder, data={"n": 1})
    audit_events_bulk_append(count=CHAIN_READ_CHUNK + 500, actor=responder, batch=2000)
    audit_record(action="test.after", actor=responder, data={"n": 2})
    return AuditEvent.objects.count()


def test_a_bulk_written_chain_verifies_and_goes_on_growing(long_chain):
    status = audit_chain_verify()
    assert status.intact, status
    assert status.count == long_chain
    last = AuditEvent.objects.order_by("-seq").first()
    assert (status.head_seq, status.head_hash) == (last.seq, last.hash)
    assert last.action == "test.after"


def test_an_edit_past_the_first_chunk_is_named(long_chain):
    seq = CHAIN_READ_CHUNK + 123
    _tamper("UPDATE audit_auditevent SET data = %s WHERE seq = %s", ['{"n": 7}', seq])
    status = audit_chain_verify()
    assert (status.intact, status.broken_seq) == (False, seq)
    assert "edited" in status.reason


def test_an_edit_to_a_value_canonical_json_refuses_is_named_as_an_edit(responder):
    audit_record(action="test.one", actor=responder, data={"n": 1})
    seq = AuditEvent.objects.get(action="test.one").seq
    # A float is never written (canonical JSON refuses it), so it can only be an edit.
    _tamper("UPDATE audit_auditevent SET data = %s WHERE seq = %s", ['{"n": 1.5}', seq])
    status = audit_chain_verify()
    assert (status.intact, status.broken_seq) == (False, seq)
    assert "edited" in status.reason
    with pytest.raises(SystemExit):
        call_command("verify_audit")


def test_the_fast_path_and_the_checked_encoding_agree_on_every_verdict():
    records = [{"n": 1, "s": "é"}, {"n": 2, "nested": {"b": [1, 2], "a": None}}]
    chain, prev = [], GENESIS_HASH
    for seq, record in enumerate(records, start=1):
        prev = chain_hash(prev, record)
        chain.append((seq, chain[-1][2] if chain else GENESIS_HASH, prev, record))
    assert verify_chain(chain) == 2
    for edited in ({"n": 1.0, "s": "é"}, {"n": 2**60, "s": "é"}, {"n": 1, "s": "e"}):
        with pytest.raises(ChainBreak, match="edited"):
            verify_chain([(1, GENESIS_HASH, chain[0][2], edited)])


def test_events_made_on_a_whole_second_and_just_after_it_verify(responder):
    # isoformat() leaves out a zero fraction: the streamed read must rebuild exactly that.
    for moment in (
        datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC),
    ):
        with time_machine.travel(moment, tick=False):
            audit_record(action="test.on_the_second", actor=responder)
    stored = list(
        AuditEvent.objects.filter(action="test.on_the_second").values_list("created_at", flat=True)
    )
    assert [moment.microsecond for moment in stored] == [0, 1]
    assert audit_chain_verify().intact
