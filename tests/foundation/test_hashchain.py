import pytest

from breakglass.core.hashchain import GENESIS_HASH, ChainBreak, chain_hash, verify_chain


def _chain(n):
    events, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        record = {"seq": seq, "action": f"a{seq}"}
        digest = chain_hash(prev, record)
        events.append((seq, prev, digest, record))
        prev = digest
    return events


def test_an_intact_chain_verifies():
    assert verify_chain(_chain(5)) == 5


def test_an_edited_event_is_named():
    events = _chain(5)
    seq, prev, digest, record = events[2]
    events[2] = (seq, prev, digest, {**record, "action": "forged"})
    with pytest.raises(ChainBreak) as caught:
        verify_chain(events)
    assert caught.value.seq == 3
    assert "edited" in caught.value.reason


def test_a_deleted_event_breaks_the_link_after_it():
    events = _chain(5)
    del events[1]
    with pytest.raises(ChainBreak) as caught:
        verify_chain(events)
    assert caught.value.seq == 3
