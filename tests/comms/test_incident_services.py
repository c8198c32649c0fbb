import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from breakglass.audit.models import AuditEvent
from comms import incidents, selectors
from comms.models import Incident, TimelineEntry


def test_sev1_cannot_be_declared_without_a_communications_lead(commander, sso):
    with pytest.raises(ValidationError, match="without a communications lead"):
        incidents.incident_declare(title="Down", severity=1, actor=commander, commander=commander)
    assert not Incident.objects.exists()


def test_sev3_can_be_declared_without_a_communications_lead(commander):
    incident = incidents.incident_declare(title="Slow", severity=3, actor=commander)
    assert incident.comms_lead is None


def test_declaring_allocates_a_reference_and_records_roles_on_the_timeline(sev1, comms_lead):
    second = incidents.incident_declare(
        title="Another", severity=2, actor=comms_lead, comms_lead=comms_lead
    )
    year = sev1.declared_at.year
    assert sev1.reference == f"INC-{year}-0001"
    assert second.reference == f"INC-{year}-0002"
    kinds = list(sev1.entries.values_list("kind", flat=True))
    assert kinds.count(TimelineEntry.Kind.ROLE) == 2
    assert AuditEvent.objects.filter(action="comms.incident.declared").count() == 2


def test_someone_without_a_role_cannot_declare(outsider):
    with pytest.raises(PermissionDenied):
        incidents.incident_declare(title="x", severity=4, actor=outsider)


def test_role_change_is_on_the_timeline_and_audited(sev1, responder, commander):
    incidents.incident_role_assign(incident=sev1, role="commander", user=responder, actor=commander)
    sev1.refresh_from_db()
    assert sev1.commander == responder
    last = sev1.entries.filter(kind="role").last()
    assert last.body == "incident commander: Ines → Rita (by Ines)"
    assert AuditEvent.objects.filter(action="comms.incident.role_assigned").exists()


def test_a_sev1_cannot_lose_its_communications_lead(sev1, commander):
    with pytest.raises(ValidationError, match="must keep"):
        incidents.incident_role_assign(incident=sev1, role="comms_lead", user=None, actor=commander)


def test_state_changes_stamp_their_times(sev1, commander):
    incidents.incident_state_change(incident=sev1, state="identified", actor=commander)
    incidents.incident_state_change(incident=sev1, state="resolved", actor=commander)
    sev1.refresh_from_db()
    assert sev1.identified_at and sev1.resolved_at
    assert sev1.entries.filter(kind="state").count() == 2


def test_real_sev1_open_ignores_drills_and_resolved_incidents(commander, comms_lead):
    assert selectors.real_sev1_open() is False
    incidents.incident_declare(
        title="drill", severity=1, actor=commander, comms_lead=comms_lead, drill=True
    )
    assert selectors.real_sev1_open() is False
    real = incidents.incident_declare(
        title="real", severity=1, actor=commander, comms_lead=comms_lead
    )
    assert selectors.real_sev1_open() is True
    incidents.incident_state_change(incident=real, state="resolved", actor=commander)
    assert selectors.real_sev1_open() is False


def test_notes_are_internal_and_empty_notes_refused(sev1, commander):
    entry = incidents.incident_note_add(incident=sev1, body="db is on fire", actor=commander)
    assert entry.internal
    with pytest.raises(ValidationError):
        incidents.incident_note_add(incident=sev1, body="  ", actor=commander)
