"""Incidents: declaring, roles, state, impact, notes and the timeline they write."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from breakglass.accounts import roles
from breakglass.audit.services import audit_record
from breakglass.outbox.services import email_enqueue
from comms.errors import CommsError
from comms.models import (
    AffectedService,
    Impact,
    Incident,
    IncidentState,
    Severity,
    TimelineEntry,
)
from comms.statuspage import component_changes_record, component_statuses

ROLE_FIELDS = {"commander": "incident commander", "comms_lead": "communications lead"}
ACTING_ROLES = (roles.RESPONDER, roles.INCIDENT_COMMANDER, roles.COMMS_LEAD, roles.ADMINISTRATOR)


def comms_can_act(user) -> bool:
    return any(roles.user_has_role(user, role) for role in ACTING_ROLES)


def require_actor(user) -> None:
    if not comms_can_act(user):
        raise PermissionDenied("Only responders, commanders and communications leads can do this.")


def user_label(user) -> str:
    if user is None:
        return "nobody"
    return user.get_full_name() or user.get_username()


def mail_notify(*, key: str, to: str, subject: str, body: str, source: str = "") -> None:
    email_enqueue(to=to, key=key, subject=subject, body=body, source=source)


def timeline_add(incident: Incident, kind: str, body: str, *, actor=None, internal=True, at=None):
    return TimelineEntry.objects.create(
        incident=incident,
        kind=kind,
        body=body,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        internal=internal,
        created_at=at or timezone.now(),
    )


def incident_url(incident: Incident) -> str:
    return f"{settings.BREAKGLASS_BASE_URL}/comms/incidents/{incident.reference}/"


# --- Incidents -----------------------------------------------------------------------------


def _next_reference(now: datetime) -> str:
    prefix = f"INC-{now.year}-"
    last = (
        Incident.objects.filter(reference__startswith=prefix)
        .order_by("-reference")
        .values_list("reference", flat=True)
        .first()
    )
    number = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{number:04d}"


def incident_declare(
    *,
    title: str,
    severity: int,
    actor,
    services: list[tuple[object, str]] | None = None,
    commander=None,
    comms_lead=None,
    drill: bool = False,
    postmortem_url: str = "",
) -> Incident:
    """Open an incident. SEV1 and SEV2 need a communications lead from the start."""
    require_actor(actor)
    if severity in Severity.values and severity <= Severity.SEV2 and comms_lead is None:
        raise CommsError(
            f"A {Severity(severity).label} cannot be declared without a communications lead."
        )
    return incident_create(
        title=title,
        severity=severity,
        actor=actor,
        services=services,
        commander=commander,
        comms_lead=comms_lead,
        drill=drill,
        postmortem_url=postmortem_url,
    )


def incident_create(
    *,
    title: str,
    severity: int,
    actor,
    services: list[tuple[object, str]] | None = None,
    commander=None,
    comms_lead=None,
    drill: bool = False,
    postmortem_url: str = "",
    declared_by_label: str = "",
) -> Incident:
    """Create the incident with its timeline and audit event; the checks every opener shares.

    People declare through `incident_declare` (role and communications-lead rules). Inbound
    alerts (comms.alerts) call this directly with no actor: a machine cannot pick a
    communications lead, so they ask the on-duty one to take the role instead.
    """
    title = (title or "").strip()[:200]
    if not title:
        raise CommsError("An incident needs a title.")
    if severity not in Severity.values:
        raise CommsError("Severity must be SEV1, SEV2, SEV3 or SEV4.")
    for _service, impact in services or []:
        if impact not in Impact.values:
            raise CommsError(f"Unknown impact {impact!r}.")
    now = timezone.now()
    with transaction.atomic():
        incident = None
        for _attempt in range(5):
            try:
                with transaction.atomic():  # savepoint: a lost race retries the next number
                    incident = Incident.objects.create(
                        reference=_next_reference(now),
                        title=title,
                        severity=severity,
                        drill=drill,
                        commander=commander,
                        comms_lead=comms_lead,
                        declared_by=actor,
                        declared_at=now,
                        postmortem_url=postmortem_url,
                    )
                break
            except IntegrityError:
                continue
        if incident is None:
            raise CommsError("Could not allocate an incident reference; try again.")
        for service, impact in services or []:
            AffectedService.objects.create(incident=incident, service=service, impact=impact)
        kind = "drill " if drill else ""
        timeline_add(
            incident,
            TimelineEntry.Kind.DECLARED,
            f"{kind}{incident.get_severity_display()} declared by "
            f"{declared_by_label or user_label(actor)}",
            actor=actor,
            at=now,
        )
        for field in ROLE_FIELDS:
            holder = getattr(incident, field)
            if holder is not None:
                _role_changed(incident, field, None, holder, actor)
        audit_record(
            action="comms.incident.declared",
            actor=actor,
            actor_label=declared_by_label or None,
            obj=incident,
            data={
                "reference": incident.reference,
                "severity": severity,
                "drill": drill,
                "services": [s.slug for s, _ in services or []],
            },
        )
    return incident


def _role_changed(incident: Incident, field: str, old, new, actor) -> None:
    name = ROLE_FIELDS[field]
    timeline_add(
        incident,
        TimelineEntry.Kind.ROLE,
        f"{name}: {user_label(old)} → {user_label(new)} (by {user_label(actor)})",
        actor=actor,
    )
    if new is not None:
        mail_notify(
            key=f"comms.role:{incident.pk}:{field}:{new.pk}:{timezone.now().timestamp()}",
            to=new.email,
            subject=f"[{incident.reference}] You are the {name}",
            body=f"You are now the {name} for {incident.reference} {incident.title}.\n"
            f"{incident_url(incident)}",
        )


def incident_role_assign(*, incident: Incident, role: str, user, actor) -> Incident:
    if role not in ROLE_FIELDS:
        raise CommsError(f"Unknown role {role!r}.")
    require_actor(actor)
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        if role == "comms_lead" and user is None and incident.severity <= Severity.SEV2:
            raise CommsError(
                f"A {incident.get_severity_display()} must keep a communications lead."
            )
        old = getattr(incident, role)
        if old == user:
            return incident
        setattr(incident, role, user)
        incident.save(update_fields=[role, "updated_at"])
        _role_changed(incident, role, old, user, actor)
        audit_record(
            action="comms.incident.role_assigned",
            actor=actor,
            obj=incident,
            data={
                "role": role,
                "from": old.get_username() if old else None,
                "to": user.get_username() if user else None,
            },
        )
    return incident


def incident_state_apply(incident: Incident, state: str, now: datetime) -> None:
    incident.state = state
    stamp = {
        "identified": "identified_at",
        "monitoring": "monitoring_at",
        "resolved": "resolved_at",
    }.get(state)
    if stamp and getattr(incident, stamp) is None:
        setattr(incident, stamp, now)
    if state != IncidentState.RESOLVED:
        incident.resolved_at = None


def incident_state_change(*, incident: Incident, state: str, actor) -> Incident:
    if state not in IncidentState.values:
        raise CommsError(f"Unknown state {state!r}.")
    require_actor(actor)
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        old = incident.state
        if old == state:
            return incident
        incident_state_apply(incident, state, timezone.now())
        incident.save()
        timeline_add(
            incident,
            TimelineEntry.Kind.STATE,
            f"state: {IncidentState(old).label} → {IncidentState(state).label}",
            actor=actor,
        )
        audit_record(
            action="comms.incident.state_changed",
            actor=actor,
            obj=incident,
            data={"from": old, "to": state},
        )
    return incident


def incident_impact_set(*, incident: Incident, service, impact: str, actor) -> None:
    if impact not in Impact.values:
        raise CommsError(f"Unknown impact {impact!r}.")
    require_actor(actor)
    with transaction.atomic():
        AffectedService.objects.update_or_create(
            incident=incident, service=service, defaults={"impact": impact}
        )
        if not incident.drill:  # the public page shows it at once if the incident is public
            component_changes_record(component_statuses())
        timeline_add(
            incident,
            TimelineEntry.Kind.IMPACT,
            f"{service.name}: {Impact(impact).label}",
            actor=actor,
        )
        audit_record(
            action="comms.incident.impact_set",
            actor=actor,
            obj=incident,
            data={"service": service.slug, "impact": impact},
        )


def incident_postmortem_link(*, incident: Incident, url: str, actor) -> Incident:
    require_actor(actor)
    url = (url or "").strip()
    if url and not url.startswith(("http://", "https://")):
        raise CommsError("A postmortem link must be an http(s) URL.")
    with transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(postmortem_url=url)
        timeline_add(
            incident, TimelineEntry.Kind.NOTE, f"postmortem: {url or 'link removed'}", actor=actor
        )
        audit_record(
            action="comms.incident.postmortem_linked", actor=actor, obj=incident, data={"url": url}
        )
    incident.refresh_from_db()
    return incident


def incident_note_add(*, incident: Incident, body: str, actor) -> TimelineEntry:
    """Notes are internal: they never reach the status page, feeds or subscribers."""
    require_actor(actor)
    body = (body or "").strip()
    if not body:
        raise CommsError("A note cannot be empty.")
    with transaction.atomic():
        entry = timeline_add(incident, TimelineEntry.Kind.NOTE, body, actor=actor)
        audit_record(action="comms.incident.note_added", actor=actor, obj=incident, data={})
    return entry


# --- Status updates ------------------------------------------------------------------------
