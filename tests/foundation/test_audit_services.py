import pytest

from breakglass.audit.models import AuditEvent
from breakglass.audit.services import audit_record
from breakglass.lib.hashchain import GENESIS_HASH, chain_hash

pytestmark = pytest.mark.django_db


def test_the_first_event_links_to_genesis(responder):
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
