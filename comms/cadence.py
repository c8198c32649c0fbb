"""The update cadence: reminders before an update is due and escalation when it is late."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from breakglass.audit.services import audit_record
from breakglass.outbox.services import email_enqueue
from comms.incidents import incident_url, mail_notify, timeline_add, user_label
from comms.models import (
    Audience,
    Incident,
    IncidentState,
    StatusUpdate,
    TimelineEntry,
)
from comms.selectors import external_update_due


def _remind_before(incident: Incident) -> timedelta:
    return timedelta(minutes=min(5, max(1, incident.cadence_minutes // 3)))


def _escalate_first_update(incident: Incident, now: datetime) -> int:
    """No external update at all within one cadence of declaring: escalate, once. The
    outbox key is the once-only guard (a second enqueue returns None)."""
    due = external_update_due(incident=incident, latest=None)
    if now <= due:
        return 0
    people = [p for p in (incident.commander, incident.comms_lead) if p is not None]
    with transaction.atomic():
        first = email_enqueue(
            key=f"comms.first-overdue:{incident.pk}",
            subject=f"[{incident.reference}] No external update yet",
            body=f"{incident.reference} was declared at {incident.declared_at:%H:%M} UTC "
            f"and nothing has been published externally.\n{incident_url(incident)}",
            # Nobody in the incident roles has an address: the security contacts.
            to=[p.email for p in people if p.email] or list(settings.BREAKGLASS_SECURITY_CONTACTS),
        )
        if first is None:
            return 0
        timeline_add(
            incident,
            TimelineEntry.Kind.CADENCE,
            "OVERDUE: no external update within the first "
            f"{incident.cadence_minutes} minutes; escalated to the incident commander",
            at=now,
        )
        audit_record(action="comms.cadence.escalated", obj=incident, data={"update": None})
    return 1


def cadence_check(*, now: datetime | None = None) -> dict:
    """Remind the communications lead shortly before a promised update is due, and escalate
    to the incident commander once it is overdue. Each stage fires once per update: the
    stamp is claimed with a conditional UPDATE, so overlapping runs cannot double-send."""
    now = now or timezone.now()
    reminded = escalated = 0
    for incident in Incident.objects.exclude(state=IncidentState.RESOLVED).select_related(
        "commander", "comms_lead"
    ):
        latest = (
            incident.updates.filter(
                audience=Audience.EXTERNAL, status=StatusUpdate.Status.PUBLISHED
            )
            .order_by("-published_at")
            .first()
        )
        if latest is None:
            escalated += _escalate_first_update(incident, now)
            continue
        due = external_update_due(incident=incident, latest=latest)
        if due is None:
            continue
        if now >= due - _remind_before(incident):
            with transaction.atomic():
                if StatusUpdate.objects.filter(pk=latest.pk, reminder_sent_at__isnull=True).update(
                    reminder_sent_at=now
                ):
                    reminded += 1
                    lead = incident.comms_lead
                    timeline_add(
                        incident,
                        TimelineEntry.Kind.CADENCE,
                        f"reminder: next external update due {due:%H:%M} UTC (to {user_label(lead)})",
                        at=now,
                    )
                    mail_notify(
                        key=f"comms.remind:{latest.pk}",
                        to=lead.email if lead else "",
                        subject=f"[{incident.reference}] Next update due at {due:%H:%M} UTC",
                        body=f"The last update promised the next one by {due:%H:%M} UTC.\n"
                        f"Draft it now: {incident_url(incident)}",
                    )
        if now > due:
            with transaction.atomic():
                if StatusUpdate.objects.filter(pk=latest.pk, escalated_at__isnull=True).update(
                    escalated_at=now
                ):
                    escalated += 1
                    late = int((now - due).total_seconds() // 60)
                    timeline_add(
                        incident,
                        TimelineEntry.Kind.CADENCE,
                        f"OVERDUE: the update promised for {due:%H:%M} UTC has not been "
                        f"published ({late} min late); escalated to the incident commander",
                        at=now,
                    )
                    audit_record(
                        action="comms.cadence.escalated",
                        obj=incident,
                        data={"update": latest.pk, "due": due.isoformat()},
                    )
                    for person in {incident.commander, incident.comms_lead} - {None}:
                        mail_notify(
                            key=f"comms.escalate:{latest.pk}:{person.pk}",
                            to=person.email,
                            subject=f"[{incident.reference}] External update OVERDUE",
                            body=f"The update promised for {due:%H:%M} UTC is {late} minutes "
                            f"late.\n{incident_url(incident)}",
                        )
    return {"reminded": reminded, "escalated": escalated}
