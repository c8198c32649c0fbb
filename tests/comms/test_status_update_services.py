from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from breakglass.audit.models import AuditEvent
from breakglass.outbox.models import OutboxMessage
from comms import cadence, selectors, updates
from comms.models import StatusUpdate


def test_unknown_template_variable_is_a_clear_error(sev1, comms_lead):
    with pytest.raises(ValidationError, match=r"unknown variable \{\{ eta \}\}"):
        updates.status_update_draft(
            incident=sev1, audience="external", body="Fixed by {{ eta }}", actor=comms_lead
        )
    assert not StatusUpdate.objects.exists()


def test_template_tags_other_than_if_are_refused(sev1, comms_lead):
    with pytest.raises(ValidationError, match="not allowed"):
        updates.status_update_draft(
            incident=sev1, audience="external", body='{% now "Y" %} x', actor=comms_lead
        )


def test_variables_are_filled_and_the_next_update_is_promised_by_cadence(sev1, comms_lead):
    update = updates.status_update_draft(
        incident=sev1,
        audience="external",
        body="{{ severity }}: {{ impact }}. Next: {{ next_update_at }}",
        actor=comms_lead,
    )
    assert update.body.startswith("SEV1: a major outage of Single sign-on. Next: ")
    assert update.next_update_at - update.created_at == timedelta(minutes=30)
    assert update.next_update_at.strftime("%H:%M") in update.body


def test_a_promise_in_the_past_is_refused(sev1, comms_lead):
    with pytest.raises(ValidationError, match="future"):
        updates.status_update_draft(
            incident=sev1,
            audience="external",
            body="x",
            actor=comms_lead,
            next_update_at=timezone.now() - timedelta(minutes=1),
        )


def test_external_update_cannot_be_published_without_review(sev1, comms_lead):
    update = updates.status_update_draft(
        incident=sev1, audience="external", body="x", actor=comms_lead
    )
    with pytest.raises(ValidationError, match="review by a second person"):
        updates.status_update_publish(update=update, actor=comms_lead)
    update.refresh_from_db()
    assert update.status == "draft"
    assert not OutboxMessage.objects.filter(kind="comms_fanout").exists()


def test_the_author_cannot_review_their_own_update(sev1, comms_lead):
    update = updates.status_update_draft(
        incident=sev1, audience="external", body="x", actor=comms_lead
    )
    with pytest.raises(ValidationError, match="cannot review their own"):
        updates.status_update_review(update=update, reviewer=comms_lead, approve=True)


def test_a_reviewed_update_publishes_once_with_one_fanout(published, comms_lead):
    assert published.status == "published"
    assert OutboxMessage.objects.filter(kind="comms_fanout").count() == 1
    assert OutboxMessage.objects.filter(kind="comms_status_export").count() == 1
    with pytest.raises(ValidationError, match="already published"):
        updates.status_update_publish(update=published, actor=comms_lead)
    assert OutboxMessage.objects.filter(kind="comms_fanout").count() == 1


def test_a_rejected_update_cannot_be_published(sev1, comms_lead, commander):
    update = updates.status_update_draft(
        incident=sev1, audience="external", body="x", actor=comms_lead
    )
    updates.status_update_review(update=update, reviewer=commander, approve=False, notes="typo")
    with pytest.raises(ValidationError):
        updates.status_update_publish(update=update, actor=comms_lead)


def test_emergency_override_needs_a_reason_is_audited_and_tells_reviewers(
    sev1, comms_lead, commander
):
    update = updates.status_update_draft(
        incident=sev1, audience="external", body="x", actor=comms_lead
    )
    with pytest.raises(ValidationError, match="needs a reason"):
        updates.status_update_publish(update=update, actor=comms_lead, override=True)
    updates.status_update_publish(
        update=update, actor=comms_lead, override=True, reason="reviewer asleep, users angry"
    )
    update.refresh_from_db()
    assert update.override_reason == "reviewer asleep, users angry"
    event = AuditEvent.objects.get(action="comms.update.override_published")
    assert event.data["override_reason"] == "reviewer asleep, users angry"
    told = OutboxMessage.objects.filter(idempotency_key__startswith=f"comms.override:{update.pk}:")
    assert list(told.values_list("recipient", flat=True)) == [commander.email]
    assert sev1.entries.filter(kind="override").exists()


def test_internal_updates_publish_without_review(sev1, comms_lead):
    update = updates.status_update_draft(
        incident=sev1, audience="internal", body="x", actor=comms_lead
    )
    updates.status_update_publish(update=update, actor=comms_lead)
    assert not OutboxMessage.objects.filter(kind="comms_status_export").exists()


def test_publishing_moves_the_incident_to_the_update_state(sev1, comms_lead, commander):
    update = updates.status_update_draft(
        incident=sev1, audience="external", body="fixed", state="resolved", actor=comms_lead
    )
    assert update.next_update_at is None
    updates.status_update_review(update=update, reviewer=commander, approve=True)
    updates.status_update_publish(update=update, actor=comms_lead)
    sev1.refresh_from_db()
    assert sev1.state == "resolved" and sev1.resolved_at


def _publish(incident, author, reviewer):
    update = updates.status_update_draft(
        incident=incident, audience="external", body="x", actor=author
    )
    updates.status_update_review(update=update, reviewer=reviewer, approve=True)
    return updates.status_update_publish(update=update, actor=author)


def test_cadence_figures_count_on_time_and_late_updates(sev1, comms_lead, commander):
    start = sev1.declared_at
    with time_machine.travel(start + timedelta(minutes=4), tick=False):
        _publish(sev1, comms_lead, commander)
    with time_machine.travel(start + timedelta(minutes=30), tick=False):
        _publish(sev1, comms_lead, commander)  # promised by 34: on time
    with time_machine.travel(start + timedelta(minutes=75), tick=False):
        late = _publish(sev1, comms_lead, commander)  # promised by 60: late
        figures = selectors.incident_cadence(incident=sev1)
    assert late.on_time is False
    assert figures["first_external_seconds"] == 240
    assert (figures["on_time"], figures["late"]) == (1, 1)
    assert figures["overdue"] is False


def test_cadence_reminds_once_then_escalates_once(published, comms_lead, commander):
    due = published.next_update_at
    with time_machine.travel(due - timedelta(minutes=10), tick=False):
        assert cadence.cadence_check() == {"reminded": 0, "escalated": 0}
    with time_machine.travel(due - timedelta(minutes=4), tick=False):
        assert cadence.cadence_check() == {"reminded": 1, "escalated": 0}
        assert cadence.cadence_check() == {"reminded": 0, "escalated": 0}
    with time_machine.travel(due + timedelta(minutes=2), tick=False):
        assert cadence.cadence_check() == {"reminded": 0, "escalated": 1}
        assert cadence.cadence_check() == {"reminded": 0, "escalated": 0}
        assert selectors.incident_cadence(incident=published.incident)["overdue"] is True
    reminders = OutboxMessage.objects.filter(idempotency_key=f"comms.remind:{published.pk}")
    assert list(reminders.values_list("recipient", flat=True)) == [comms_lead.email]
    escalations = OutboxMessage.objects.filter(idempotency_key__startswith="comms.escalate:")
    assert set(escalations.values_list("recipient", flat=True)) == {
        commander.email,
        comms_lead.email,
    }
    assert mail.outbox == []  # only queued; the worker sends them


def test_an_incident_with_no_external_update_escalates_once_after_one_cadence(sev1, commander):
    with time_machine.travel(sev1.declared_at + timedelta(minutes=29), tick=False):
        assert cadence.cadence_check()["escalated"] == 0
    with time_machine.travel(sev1.declared_at + timedelta(minutes=31), tick=False):
        assert cadence.cadence_check()["escalated"] == 1
        assert cadence.cadence_check()["escalated"] == 0
    row = OutboxMessage.objects.get(idempotency_key=f"comms.first-overdue:{sev1.pk}")
    assert commander.email in row.payload["to"]
    assert sev1.entries.filter(kind="cadence").count() == 1


def test_an_escalation_with_no_address_in_the_roles_goes_to_the_security_contacts(
    sev1, commander, comms_lead, settings
):
    settings.BREAKGLASS_SECURITY_CONTACTS = ["soc@example.test"]
    commander.email = comms_lead.email = ""
    commander.save()
    comms_lead.save()
    with time_machine.travel(sev1.declared_at + timedelta(minutes=31), tick=False):
        assert cadence.cadence_check()["escalated"] == 1
    row = OutboxMessage.objects.get(idempotency_key=f"comms.first-overdue:{sev1.pk}")
    assert row.payload["to"] == ["soc@example.test"]


def test_the_cadence_comes_from_the_settings_per_severity(sev1, settings):
    settings.COMMS_CADENCE_MINUTES = {**settings.COMMS_CADENCE_MINUTES, 1: 15}
    assert sev1.cadence_minutes == 15
