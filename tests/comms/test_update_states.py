"""The review/publish state machine lives on StatusUpdate; the services enforce it and
the incident room shows exactly the buttons that would work."""

import pytest
from django.core.exceptions import ValidationError

from comms import updates
from comms.models import StatusUpdate, Subscriber
from tests.comms.conftest import subscriber_make


def draft(incident, author, audience):
    return updates.status_update_draft(incident=incident, audience=audience, body="x", actor=author)


def _published(update, actor, override=False) -> bool:
    try:
        updates.status_update_publish(update=update, actor=actor, override=override, reason="r")
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("audience", ["internal", "external"])
@pytest.mark.parametrize("verdict", [None, True, False])
def test_publishable_says_exactly_what_the_service_publishes(
    sev1, comms_lead, commander, audience, verdict
):
    update = draft(sev1, comms_lead, audience)
    if verdict is not None:
        update = updates.status_update_review(update=update, reviewer=commander, approve=verdict)
    expected = audience == "internal" or verdict is True
    assert update.publishable is expected
    assert update.needs_review_to_publish is not expected
    assert _published(StatusUpdate.objects.get(pk=update.pk), comms_lead) is expected


def test_a_rejected_internal_update_shows_publish_in_the_room_and_publishes(
    as_user, sev1, comms_lead, commander
):
    """The template used to hide Publish here while the service would publish it."""
    update = draft(sev1, comms_lead, "internal")
    updates.status_update_review(update=update, reviewer=commander, approve=False, notes="typo")
    room = as_user(comms_lead).get(f"/comms/incidents/{sev1.reference}/").content.decode()
    card = room.split(f'id="update-{update.pk}"', 1)[1].split("</article>", 1)[0]
    assert "publish-form" in card
    assert "Emergency override" not in card
    assert _published(update, comms_lead)


def test_an_unreviewed_external_update_offers_only_the_override(
    as_user, sev1, comms_lead, commander
):
    update = draft(sev1, comms_lead, "external")
    room = as_user(comms_lead).get(f"/comms/incidents/{sev1.reference}/").content.decode()
    card = room.split(f'id="update-{update.pk}"', 1)[1].split("</article>", 1)[0]
    assert "publish-form" not in card
    assert "Emergency override" in card
    assert "Waiting for a second person to review." in card  # the author cannot review
    assert not _published(update, comms_lead)
    assert _published(update, comms_lead, override=True)


def test_the_author_is_not_offered_a_review_and_the_service_agrees(sev1, comms_lead, commander):
    update = draft(sev1, comms_lead, "external")
    assert update.review_problem(reviewer=comms_lead) is not None
    assert update.review_problem(reviewer=commander) is None
    with pytest.raises(ValidationError, match="cannot review their own"):
        updates.status_update_review(update=update, reviewer=comms_lead, approve=True)


def test_active_subscribers_are_confirmed_and_still_subscribed(db):
    confirmed = subscriber_make("a@example.test")
    pending = Subscriber.objects.create(email="b@example.test", created_at=confirmed.created_at)
    left = subscriber_make("c@example.test")
    left.unsubscribed_at = left.confirmed_at
    left.save()
    assert list(Subscriber.objects.active()) == [confirmed]
    assert [s.status for s in (confirmed, pending, left)] == ["active", "pending", "unsubscribed"]
    assert [s.active for s in (confirmed, pending, left)] == [True, False, False]
