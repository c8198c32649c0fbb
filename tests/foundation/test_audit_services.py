import pytest
from django.db import transaction

from breakglass.audit.models import AuditEvent
from breakglass.audit.selectors import audit_chain_verify
from breakglass.audit.services import audit_record
from breakglass.core.hashchain import GENESIS_HASH, chain_hash

pytestmark = pytest.mark.django_db


def test_the_first_event_links_to_genesis(responder):
    from tests.foundation.test_audit_verify import audit_log_emptied

    audit_log_emptied()
    event = audit_record(action="test.first", actor=responder, data={"n": 1})
    assert event.seq == 1
    assert event.prev_hash == GENESIS_HASH
    assert event.actor_label == responder.username


def test_each_event_links_to_the_one_before():
    first = audit_record(action="test.one")
    second = audit_record(action="test.two")
    assert second.prev_hash == first.hash
    stored = AuditEvent.objects.get(pk=second.pk)
    assert chain_hash(stored.prev_hash, stored.chain_record()) == stored.hash


def test_the_actor_label_is_system_without_an_actor():
    assert audit_record(action="test.task").actor_label == "system"


def test_the_object_is_named_by_its_label_and_key(responder):
    event = audit_record(action="test.obj", obj=responder)
    assert (event.object_type, event.object_id) == ("auth.user", str(responder.pk))


def test_data_is_stored_exactly_as_hashed():
    event = audit_record(action="test.data", data={"ids": (1, 2), "ok": True})
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.data == {"ids": [1, 2], "ok": True}
    assert chain_hash(stored.prev_hash, stored.chain_record()) == stored.hash


def test_floats_are_refused_before_anything_is_written():
    from breakglass.core.canonical import CanonicalError

    with pytest.raises(CanonicalError):
        audit_record(action="test.float", data={"ratio": 0.5})
    assert not AuditEvent.objects.exists()


def test_an_event_rolls_back_with_its_action():
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(action="test.doomed")
        raise RuntimeError("the action failed")
    assert not AuditEvent.objects.filter(action="test.doomed").exists()
    assert audit_record(action="test.after").seq == 1


@pytest.mark.django_db(transaction=True)
def test_events_join_the_chain_at_commit_in_the_order_they_were_recorded():
    with transaction.atomic():
        first = audit_record(action="test.one")
        second = audit_record(action="test.two")
        # Nothing is appended (and the chain's lock is not taken) before COMMIT.
        assert first.seq is None
        assert not AuditEvent.objects.exists()
    assert (first.seq, second.seq) == (1, 2)
    assert second.prev_hash == first.hash
    assert audit_chain_verify().intact


@pytest.mark.django_db(transaction=True)
def test_an_event_recorded_in_a_rolled_back_savepoint_is_never_appended():
    with transaction.atomic():
        audit_record(action="test.kept")
        try:
            with transaction.atomic():
                audit_record(action="test.rolled_back")
                raise RuntimeError("refused")
        except RuntimeError:
            pass
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["test.kept"]


@pytest.mark.django_db(transaction=True)
def test_an_event_recorded_in_a_rolled_back_transaction_is_never_appended():
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(action="test.rolled_back")
        raise RuntimeError("refused")
    audit_record(action="test.next")
    assert list(AuditEvent.objects.values_list("action", "seq")) == [("test.next", 1)]


@pytest.mark.django_db(transaction=True)
def test_the_chain_lock_is_not_held_while_a_transaction_does_its_other_work():
    """Another writer appends and commits while this transaction, which recorded an event
    first, is still busy: the chain's lock is taken only for the append at COMMIT."""
    import threading

    from django.db import connection

    other = {}

    def other_writer():
        try:
            other["seq"] = audit_record(action="test.other").seq
        finally:
            connection.close()  # this thread's own connection

    with transaction.atomic():
        mine = audit_record(action="test.slow")
        thread = threading.Thread(target=other_writer)
        thread.start()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the other writer waited for this transaction"
    assert (other["seq"], mine.seq) == (1, 2)
    assert audit_chain_verify().intact
