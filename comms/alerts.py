"""Alerts in: Prometheus Alertmanager and PagerDuty (v3 webhooks) open or update incidents.

Authentication happens before anything is parsed (see comms.alert_views): Alertmanager has
no signature of its own, so it presents a bearer token (`http_config.authorization`) or
carries it in the URL path; PagerDuty signs the raw body with HMAC-SHA256 (`v1=` entries in
`X-PagerDuty-Signature`, several during a secret rotation).

What an alert may do, and what it may not:
- open an incident (severity from the alert's labels or PagerDuty priority/urgency, affected
  services by slug or through BREAKGLASS_ALERT_SERVICE_MAP) and, for SEV1/SEV2, ask the
  on-duty communications lead to take the role (a machine cannot pick a person);
- add timeline entries to the incident it opened;
- never resolve anything: a resolved alert *proposes* resolution to the commander. A
  monitoring system that recovers is evidence, not a decision, and an attacker holding the
  token must not be able to close an incident people are still working on.

Idempotent on the alert key: the InboundAlert row is inserted first (claim by insert), so a
duplicate delivery, a retry after a timeout or two receivers racing change nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from breakglass.access.models import CriticalService
from breakglass.accounts import roles
from breakglass.audit.services import audit_record
from comms.incidents import incident_create, incident_url, mail_notify, timeline_add
from comms.models import Impact, InboundAlert, Incident, IncidentState, Severity, TimelineEntry

# Words used for severity by Prometheus rules, PagerDuty priorities and common conventions.
SEVERITY_WORDS = {
    **dict.fromkeys(("critical", "page", "sev1", "p1", "disaster", "emergency"), 1),
    **dict.fromkeys(("high", "major", "error", "sev2", "p2"), 2),
    **dict.fromkeys(("warning", "warn", "minor", "medium", "sev3", "p3"), 3),
    **dict.fromkeys(("info", "low", "sev4", "p4", "p5", "none"), 4),
}
IMPACT_FOR_SEVERITY = {
    1: Impact.MAJOR,
    2: Impact.PARTIAL,
    3: Impact.DEGRADED,
    4: Impact.DEGRADED,
}
# Alert labels that can name the affected service, in the order they are tried.
SERVICE_LABELS = ("service", "component", "app")


class AlertPayloadError(ValueError):
    """The payload is authentic but not something we can read (one line for the sender)."""


@dataclass
class Alert:
    """One alert, whatever it came from."""

    source: str
    key: str
    firing: bool
    title: str
    severity: int
    service_names: list[str] = field(default_factory=list)
    link: str = ""
    detail: str = ""


@dataclass
class AlertOutcome:
    outcome: str  # opened, updated, unchanged, resolution-proposed, ignored
    incident: Incident | None = None

    def as_json(self) -> dict:
        return {
            "outcome": self.outcome,
            "incident": self.incident.reference if self.incident else None,
        }


def severity_from_words(*words: str | None) -> int:
    """The most severe level any of the words names; the default when none is known."""
    found = [
        SEVERITY_WORDS[w.strip().lower()]
        for w in words
        if w and w.strip().lower() in SEVERITY_WORDS
    ]
    return min(found) if found else settings.BREAKGLASS_ALERT_DEFAULT_SEVERITY


def service_map() -> dict[str, str]:
    """BREAKGLASS_ALERT_SERVICE_MAP as {name in the alert: CriticalService slug}."""
    mapping = {}
    for entry in settings.BREAKGLASS_ALERT_SERVICE_MAP:
        name, sep, slug = entry.partition("=")
        if sep and name.strip() and slug.strip():
            mapping[name.strip().lower()] = slug.strip()
    return mapping


def services_resolve(names: list[str]) -> tuple[list[CriticalService], list[str]]:
    """(services found, names that matched nothing). A name matches the map, a service's
    slug or its name, case-insensitively."""
    mapping = service_map()
    by_key = {}
    for service in CriticalService.objects.all():
        by_key[service.slug.lower()] = service
        by_key[service.name.lower()] = service
    found: dict[int, CriticalService] = {}
    unknown = []
    for name in names:
        lowered = name.strip().lower()
        if not lowered:
            continue
        slug = mapping.get(lowered)
        service = by_key.get(slug.lower()) if slug else by_key.get(lowered)
        if service is None:
            unknown.append(name.strip())
        else:
            found[service.pk] = service
    return list(found.values()), sorted(set(unknown))


# --- Parsing ---------------------------------------------------------------------------------


def _mapping(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AlertPayloadError(f"{where} must be an object")
    return value


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def alertmanager_parse(payload) -> Alert:
    """Alertmanager's webhook receiver payload, version 4 (one notification = one group)."""
    payload = _mapping(payload, "the payload")
    if str(payload.get("version")) != "4":
        raise AlertPayloadError(
            f"unsupported Alertmanager payload version {payload.get('version')!r} (expected 4)"
        )
    key = _text(payload.get("groupKey"))
    if not key:
        raise AlertPayloadError("groupKey is missing")
    status = payload.get("status")
    if status not in ("firing", "resolved"):
        raise AlertPayloadError(f"status must be firing or resolved, not {status!r}")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not all(isinstance(a, dict) for a in alerts):
        raise AlertPayloadError("alerts must be a list of objects")
    common_labels = _mapping(payload.get("commonLabels"), "commonLabels")
    group_labels = _mapping(payload.get("groupLabels"), "groupLabels")
    common_annotations = _mapping(payload.get("commonAnnotations"), "commonAnnotations")
    labels_list = [_mapping(a.get("labels"), "alert labels") for a in alerts]
    firing_labels = [
        labels for a, labels in zip(alerts, labels_list, strict=True) if a.get("status") == "firing"
    ] or labels_list
    severity = severity_from_words(
        *(_text(labels.get("severity")) for labels in firing_labels),
        _text(common_labels.get("severity")),
    )
    names = []
    for labels in [common_labels, *labels_list]:
        for label in SERVICE_LABELS:
            if _text(labels.get(label)):
                names.append(_text(labels.get(label)))
                break
    alertname = (
        _text(group_labels.get("alertname"))
        or _text(common_labels.get("alertname"))
        or next((_text(labels.get("alertname")) for labels in labels_list), "")
    )
    summary = _text(common_annotations.get("summary")) or _text(
        common_annotations.get("description")
    )
    title = summary or alertname or "Alert from Alertmanager"
    if summary and alertname and alertname not in summary:
        title = f"{alertname}: {summary}"
    link = next(
        (_text(a.get("generatorURL")) for a in alerts if _text(a.get("generatorURL"))), ""
    ) or _text(payload.get("externalURL"))
    detail = f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''} in group {key}"
    return Alert(
        source=InboundAlert.Source.ALERTMANAGER,
        key=key,
        firing=status == "firing",
        title=title,
        severity=severity,
        service_names=names,
        link=link if link.startswith(("http://", "https://")) else "",
        detail=detail,
    )


# PagerDuty event types about the incident itself; the others (notes, responders, status
# updates) carry other data types and do not change what we do.
PAGERDUTY_FIRING = {
    "incident.triggered",
    "incident.reopened",
    "incident.acknowledged",
    "incident.unacknowledged",
    "incident.escalated",
    "incident.delegated",
    "incident.reassigned",
    "incident.priority_updated",
}


def pagerduty_parse(payload) -> Alert | None:
    """A PagerDuty v3 webhook; None for event types that do not concern incidents."""
    payload = _mapping(payload, "the payload")
    event = _mapping(payload.get("event"), "event")
    event_type = _text(event.get("event_type"))
    if not event_type:
        raise AlertPayloadError("event.event_type is missing")
    if event_type not in PAGERDUTY_FIRING and event_type != "incident.resolved":
        return None
    data = _mapping(event.get("data"), "event.data")
    if data.get("type") != "incident":
        raise AlertPayloadError(f"{event_type}: event.data.type must be incident")
    key = _text(data.get("id"))
    if not key:
        raise AlertPayloadError("event.data.id is missing")
    priority = _mapping(data.get("priority"), "event.data.priority")
    urgency = _text(data.get("urgency"))
    priority_name = _text(priority.get("summary")).lower()
    if priority_name in SEVERITY_WORDS:
        severity = SEVERITY_WORDS[priority_name]
    else:
        # No (known) priority: high urgency pages someone now (SEV2), low waits (SEV3).
        severity = {"high": 2, "low": 3}.get(
            urgency.lower(), settings.BREAKGLASS_ALERT_DEFAULT_SEVERITY
        )
    service = _mapping(data.get("service"), "event.data.service")
    names = [n for n in (_text(service.get("id")), _text(service.get("summary"))) if n]
    number = data.get("number")
    title = _text(data.get("title")) or f"PagerDuty incident {number or key}"
    link = _text(data.get("html_url"))
    return Alert(
        source=InboundAlert.Source.PAGERDUTY,
        key=key,
        firing=event_type != "incident.resolved",
        title=title,
        severity=severity,
        # The map is tried with the service id first, then its name; one service either way.
        service_names=names[:1] if names[:1] and names[0].lower() in service_map() else names,
        link=link if link.startswith(("http://", "https://")) else "",
        detail=f"{event_type} (PagerDuty #{number})" if number else event_type,
    )


# --- The service -----------------------------------------------------------------------------


def on_duty_comms_leads() -> list:
    """Who is asked to take the communications lead role: BREAKGLASS_COMMS_ON_DUTY
    (usernames) when set, else every active communications lead."""
    User = get_user_model()
    names = settings.BREAKGLASS_COMMS_ON_DUTY
    if names:
        people = User.objects.filter(username__in=names, is_active=True)
    else:
        people = User.objects.filter(groups__name=roles.COMMS_LEAD, is_active=True)
    return list(people.distinct().order_by("username"))


def _source_label(source: str) -> str:
    return InboundAlert.Source(source).label


def _open_incident(alert: Alert, row: InboundAlert, now) -> Incident:
    services, unknown = services_resolve(alert.service_names)
    impact = IMPACT_FOR_SEVERITY[alert.severity]
    incident = incident_create(
        title=alert.title,
        severity=alert.severity,
        actor=None,
        services=[(service, impact) for service in services],
        declared_by_label=f"{_source_label(alert.source)} alert",
    )
    lines = [f"Opened from {_source_label(alert.source)}: {alert.title} ({alert.detail})."]
    if alert.link:
        lines.append(f"Source: {alert.link}")
    if unknown:
        lines.append(
            "Services in the alert that match nothing here (add them to "
            f"BREAKGLASS_ALERT_SERVICE_MAP): {', '.join(unknown)}"
        )
    timeline_add(incident, TimelineEntry.Kind.NOTE, "\n".join(lines), at=now)
    if incident.severity <= Severity.SEV2:
        leads = on_duty_comms_leads()
        for person in leads:
            mail_notify(
                key=f"comms.alert.ask-lead:{incident.pk}:{person.pk}",
                to=person.email,
                subject=f"[{incident.reference}] {incident.get_severity_display()} opened by an "
                "alert: please take the communications lead role",
                body=f"{incident.reference} {incident.title} was opened by "
                f"{_source_label(alert.source)} and has no communications lead yet.\n"
                "Open the incident room and assign yourself as communications lead "
                "(or hand it to someone who can take it now):\n"
                f"{incident_url(incident)}",
                source=f"comms.incident:{incident.pk}",
            )
        asked = (
            ", ".join(p.get_username() for p in leads) or "nobody (no communications lead exists)"
        )
        timeline_add(
            incident,
            TimelineEntry.Kind.ROLE,
            f"communications lead requested from: {asked}",
            at=now,
        )
    return incident


def _propose_resolution(alert: Alert, row: InboundAlert, now) -> None:
    incident = row.incident
    timeline_add(
        incident,
        TimelineEntry.Kind.NOTE,
        f"{_source_label(alert.source)} reports the alert resolved ({alert.detail}). "
        "Proposed: resolve the incident once you have checked; it is not resolved "
        "automatically.",
        at=now,
    )
    people = [p for p in (incident.commander, incident.comms_lead) if p is not None]
    if not people:
        people = on_duty_comms_leads()
    for person in people:
        mail_notify(
            key=f"comms.alert.resolved:{row.pk}:{row.deliveries}:{person.pk}",
            to=person.email,
            subject=f"[{incident.reference}] The alert resolved: resolve the incident?",
            body=f"{_source_label(alert.source)} reports the alert behind {incident.reference} "
            f"{incident.title} as resolved.\nIf the service has recovered, resolve the incident "
            f"and publish a final update:\n{incident_url(incident)}",
            source=f"comms.incident:{incident.pk}",
        )


def alert_receive(*, alert: Alert) -> AlertOutcome:
    """Open or update the incident for one alert. One transaction, with its audit event."""
    now = timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():  # savepoint: the insert is the idempotency claim
                row = InboundAlert.objects.create(
                    source=alert.source,
                    key=alert.key,
                    status=InboundAlert.Status.FIRING
                    if alert.firing
                    else InboundAlert.Status.RESOLVED,
                    title=alert.title[:200],
                    link=alert.link[:500],
                    first_received_at=now,
                    last_received_at=now,
                )
            created = True
        except IntegrityError:
            row = InboundAlert.objects.select_for_update().get(source=alert.source, key=alert.key)
            created = False

        if created and not alert.firing:
            # Resolved before we ever saw it fire: nothing to open, nothing to propose.
            audit_record(
                action="comms.alert.ignored",
                actor_label=alert.source,
                object_type="comms.inboundalert",
                object_id=row.pk,
                data={
                    "source": alert.source,
                    "key": alert.key,
                    "reason": "resolved, never seen firing",
                },
            )
            return AlertOutcome("ignored")

        if not created:
            row.deliveries += 1
            row.last_received_at = now
        incident_closed = row.incident is not None and row.incident.state == IncidentState.RESOLVED
        if alert.firing and (row.incident is None or incident_closed):
            # New, or the same alert firing again after people resolved its incident: that
            # is a new incident, not a reopening behind their backs.
            row.incident = _open_incident(alert, row, now)
            row.status = InboundAlert.Status.FIRING
            row.title = alert.title[:200]
            outcome = "opened"
        elif alert.firing and row.status == InboundAlert.Status.RESOLVED:
            row.status = InboundAlert.Status.FIRING
            timeline_add(
                row.incident,
                TimelineEntry.Kind.NOTE,
                f"{_source_label(alert.source)} reports the alert firing again ({alert.detail}).",
                at=now,
            )
            outcome = "updated"
        elif not alert.firing and row.status == InboundAlert.Status.FIRING and not incident_closed:
            row.status = InboundAlert.Status.RESOLVED
            _propose_resolution(alert, row, now)
            outcome = "resolution-proposed"
        else:
            # A repeat (Alertmanager re-sends on repeat_interval; PagerDuty retries): the row's
            # counters move, the incident does not.
            row.status = (
                InboundAlert.Status.FIRING if alert.firing else InboundAlert.Status.RESOLVED
            )
            row.save(update_fields=["deliveries", "last_received_at", "status"])
            return AlertOutcome("unchanged", row.incident)
        row.save()
        audit_record(
            action=f"comms.alert.{outcome.replace('-', '_')}",
            actor_label=alert.source,
            obj=row.incident,
            data={
                "source": alert.source,
                "key": alert.key,
                "severity": alert.severity,
                "firing": alert.firing,
            },
        )
    return AlertOutcome(outcome, row.incident)


def alert_refusal_record(*, source: str, reason: str, remote_addr: str) -> None:
    """One audit event per refused delivery (a bad token or signature), nothing else."""
    audit_record(
        action="comms.alert.refused",
        actor_label=source,
        object_type="comms.inboundalert",
        data={"source": source, "reason": reason, "remote_addr": remote_addr},
    )
