"""The public view of incidents, in the Atlassian Statuspage public v2 format.

Only what was reviewed and published externally is public: an incident appears once its
first external update is published, its status is that of its latest external update,
and drill incidents never appear. The same builders feed the live JSON endpoints, the
HTML page, the Atom feed and the static export, so they cannot disagree.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.db.models import Prefetch
from django.utils import feedgenerator, timezone
from django.utils.html import escape

from breakglass.access.models import CriticalService
from comms.models import (
    IMPACT_RANK,
    Audience,
    ComponentStatus,
    Impact,
    Incident,
    IncidentState,
    Maintenance,
    StatusUpdate,
)

PAGE_ID = "breakglass"
INDICATOR_DESCRIPTIONS = {
    "none": "All Systems Operational",
    "minor": "Minor Service Outage",
    "major": "Partial System Outage",
    "critical": "Major Service Outage",
    "maintenance": "Service Under Maintenance",
}
_INDICATOR_RANK = {"none": 0, "maintenance": 0, "minor": 1, "major": 2, "critical": 3}


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def page_url() -> str:
    return f"{settings.BREAKGLASS_BASE_URL}/status/"


def public_incidents(*, limit: int = 50, unresolved_only: bool = False) -> list[Incident]:
    published = StatusUpdate.objects.filter(
        audience=Audience.EXTERNAL, status=StatusUpdate.Status.PUBLISHED
    ).order_by("-published_at", "-id")
    qs = (
        Incident.objects.filter(
            drill=False,
            updates__audience=Audience.EXTERNAL,
            updates__status=StatusUpdate.Status.PUBLISHED,
        )
        .distinct()
        .prefetch_related(
            Prefetch("updates", queryset=published, to_attr="public_updates"),
            "affected__service",
        )
        .order_by("-declared_at")
    )
    incidents = list(qs[: limit * 2 if unresolved_only else limit])
    if unresolved_only:
        incidents = [i for i in incidents if public_state(i) != IncidentState.RESOLVED]
    return incidents[:limit]


def public_state(incident: Incident) -> str:
    return incident.public_updates[0].incident_state if incident.public_updates else incident.state


def _component(
    service: CriticalService, status: str, position: int, changed: dict[int, datetime]
) -> dict:
    return {
        "id": service.slug,
        "name": service.name,
        "status": status,
        "created_at": ts(_epoch()),
        "updated_at": ts(changed.get(service.pk, _epoch())),
        "position": position,
        "description": service.description or None,
        "showcase": True,
        "start_date": None,
        "group_id": None,
        "page_id": PAGE_ID,
        "group": False,
        "only_show_if_degraded": False,
    }


def _epoch() -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC)


def component_statuses(incidents: list[Incident] | None = None) -> dict[int, str]:
    """service pk -> worst impact among unresolved public incidents, or under_maintenance."""
    if incidents is None:
        incidents = public_incidents(unresolved_only=True)
    worst: dict[int, str] = {}
    for incident in incidents:
        if public_state(incident) == IncidentState.RESOLVED:
            continue
        for affected in incident.affected.all():
            current = worst.get(affected.service_id, Impact.OPERATIONAL)
            if IMPACT_RANK[affected.impact] > IMPACT_RANK.get(current, 0):
                worst[affected.service_id] = affected.impact
    now = timezone.now()
    for maintenance in Maintenance.objects.filter(
        status__in=[Maintenance.Status.IN_PROGRESS, Maintenance.Status.VERIFYING],
        scheduled_for__lte=now,
    ).prefetch_related("services"):
        for service in maintenance.services.all():
            if worst.get(service.pk, Impact.OPERATIONAL) == Impact.OPERATIONAL:
                worst[service.pk] = "under_maintenance"
    return worst


def component_changes_record(
    statuses: dict[int, str], *, now: datetime | None = None
) -> dict[int, datetime]:
    """Record each service's public status; return when each last changed (service pk ->
    time), which the documents give as `components[].updated_at`.

    The time moves when the status does, and only then: an update that leaves the status
    alone (Investigating -> Identified) does not move it, because widgets poll components
    to notice changes. The services that change what is public (publishing an update,
    setting an impact) call this inside their transaction, so the time is exact; every
    read calls it too and catches what no service does (a maintenance window reaching its
    start time). It writes only when a status differs, so a read almost never writes, and
    in service order, so two writers cannot deadlock.
    """
    now = now or timezone.now()
    recorded = dict(ComponentStatus.objects.values_list("service_id", "status"))
    missing = []
    for pk in CriticalService.objects.order_by("pk").values_list("pk", flat=True):
        status = statuses.get(pk, Impact.OPERATIONAL)
        if pk not in recorded:
            # Never seen: an operational service has not changed since the page began.
            since = _epoch() if status == Impact.OPERATIONAL else now
            missing.append(ComponentStatus(service_id=pk, status=status, changed_at=since))
        elif recorded[pk] != status:
            ComponentStatus.objects.filter(service_id=pk).exclude(status=status).update(
                status=status, changed_at=now
            )
    if missing:
        ComponentStatus.objects.bulk_create(missing, ignore_conflicts=True)
    return dict(ComponentStatus.objects.values_list("service_id", "changed_at"))


def components(statuses: dict[int, str], changed: dict[int, datetime]) -> list[dict]:
    return [
        _component(service, statuses.get(service.pk, Impact.OPERATIONAL), position, changed)
        for position, service in enumerate(CriticalService.objects.order_by("tier", "name"), 1)
    ]


def incident_json(incident: Incident, changed: dict[int, datetime]) -> dict:
    updates = incident.public_updates  # newest first, as Statuspage lists them
    affected = list(incident.affected.all())
    status_now = public_state(incident)
    component_status = {
        a.service_id: (Impact.OPERATIONAL if status_now == IncidentState.RESOLVED else a.impact)
        for a in affected
    }
    comps = [
        _component(a.service, component_status[a.service_id], position, changed)
        for position, a in enumerate(affected, 1)
    ]
    monitoring_at = next(
        (u.published_at for u in reversed(updates) if u.incident_state == "monitoring"), None
    )
    resolved_at = (
        next((u.published_at for u in updates if u.incident_state == "resolved"), None)
        if status_now == IncidentState.RESOLVED
        else None
    )
    return {
        "id": incident.reference.lower(),
        "name": incident.title,
        "status": status_now,
        "created_at": ts(incident.declared_at),
        "updated_at": ts(updates[0].published_at if updates else incident.updated_at),
        "monitoring_at": ts(monitoring_at),
        "resolved_at": ts(resolved_at),
        "impact": incident.statuspage_impact,
        "shortlink": f"{page_url()}#{incident.reference}",
        "started_at": ts(incident.declared_at),
        "page_id": PAGE_ID,
        "incident_updates": [
            {
                "id": f"{incident.reference.lower()}-u{u.pk}",
                "status": u.incident_state,
                "body": u.body,
                "incident_id": incident.reference.lower(),
                "created_at": ts(u.published_at),
                "updated_at": ts(u.published_at),
                "display_at": ts(u.published_at),
                "affected_components": [
                    {
                        "code": a.service.slug,
                        "name": a.service.name,
                        "old_status": Impact.OPERATIONAL,
                        "new_status": (
                            Impact.OPERATIONAL
                            if u.incident_state == IncidentState.RESOLVED
                            else a.impact
                        ),
                    }
                    for a in affected
                ],
                "deliver_notifications": True,
                "custom_tweet": None,
                "tweet_id": None,
            }
            for u in updates
        ],
        "components": comps,
        "postmortem_body": None,
        "postmortem_url": incident.postmortem_url or None,
    }


def maintenance_json(maintenance: Maintenance, changed: dict[int, datetime]) -> dict:
    comps = [
        _component(
            s,
            "under_maintenance" if maintenance.status != "completed" else "operational",
            i,
            changed,
        )
        for i, s in enumerate(maintenance.services.all(), 1)
    ]
    mid = f"maint-{maintenance.pk}"
    return {
        "id": mid,
        "name": maintenance.name,
        "status": maintenance.status,
        "created_at": ts(maintenance.created_at),
        "updated_at": ts(maintenance.updated_at),
        "monitoring_at": None,
        "resolved_at": ts(maintenance.scheduled_until)
        if maintenance.status == Maintenance.Status.COMPLETED
        else None,
        "impact": "maintenance",
        "shortlink": f"{page_url()}#{mid}",
        "started_at": ts(maintenance.scheduled_for),
        "page_id": PAGE_ID,
        "incident_updates": [
            {
                "id": f"{mid}-u1",
                "status": maintenance.status,
                "body": maintenance.body or maintenance.name,
                "incident_id": mid,
                "created_at": ts(maintenance.created_at),
                "updated_at": ts(maintenance.updated_at),
                "display_at": ts(maintenance.created_at),
                "affected_components": [
                    {
                        "code": c["id"],
                        "name": c["name"],
                        "old_status": "operational",
                        "new_status": c["status"],
                    }
                    for c in comps
                ],
                "deliver_notifications": True,
                "custom_tweet": None,
                "tweet_id": None,
            }
        ],
        "components": comps,
        "scheduled_for": ts(maintenance.scheduled_for),
        "scheduled_until": ts(maintenance.scheduled_until),
    }


def _maintenances(*, upcoming_only: bool = False) -> list[Maintenance]:
    qs = Maintenance.objects.prefetch_related("services").order_by("-scheduled_for")
    if upcoming_only:
        qs = qs.exclude(status=Maintenance.Status.COMPLETED)
    return list(qs[:50])


def overall_status(unresolved: list[Incident], maintenances: list[Maintenance]) -> dict:
    indicator = "none"
    for incident in unresolved:
        if _INDICATOR_RANK[incident.statuspage_impact] > _INDICATOR_RANK[indicator]:
            indicator = incident.statuspage_impact
    if indicator == "none" and any(
        m.status in (Maintenance.Status.IN_PROGRESS, Maintenance.Status.VERIFYING)
        for m in maintenances
    ):
        indicator = "maintenance"
    return {"indicator": indicator, "description": INDICATOR_DESCRIPTIONS[indicator]}


def page_json(updated_at: datetime | None = None) -> dict:
    return {
        "id": PAGE_ID,
        "name": settings.COMMS_STATUS_PAGE_NAME,
        "url": page_url(),
        "time_zone": "Etc/UTC",
        "updated_at": ts(updated_at or _last_change()),
    }


def _last_change() -> datetime:
    latest = (
        StatusUpdate.objects.filter(
            audience=Audience.EXTERNAL, status=StatusUpdate.Status.PUBLISHED, incident__drill=False
        )
        .order_by("-published_at")
        .values_list("published_at", flat=True)
        .first()
    )
    maint = Maintenance.objects.order_by("-updated_at").values_list("updated_at", flat=True).first()
    candidates = [d for d in (latest, maint) if d]
    return max(candidates) if candidates else _epoch()


def all_documents() -> dict[str, dict]:
    """Every JSON document, keyed by its file name under api/v2/."""
    page = page_json()
    unresolved = public_incidents(unresolved_only=True)
    statuses = component_statuses(unresolved)
    changed = component_changes_record(statuses)
    comps = components(statuses, changed)
    maintenances = _maintenances()
    upcoming = [m for m in maintenances if m.status != Maintenance.Status.COMPLETED]
    # Statuspage's split: "upcoming" are those still in the Scheduled state, "active" those
    # In Progress or Verifying. summary.json lists both (every one not completed).
    scheduled = [m for m in upcoming if m.status == Maintenance.Status.SCHEDULED]
    active = [m for m in upcoming if m.status != Maintenance.Status.SCHEDULED]
    status = overall_status(unresolved, maintenances)
    recent = public_incidents()
    return {
        "summary.json": {
            "page": page,
            "components": comps,
            "incidents": [incident_json(i, changed) for i in unresolved],
            "scheduled_maintenances": [maintenance_json(m, changed) for m in upcoming],
            "status": status,
        },
        "status.json": {"page": page, "status": status},
        "components.json": {"page": page, "components": comps},
        "incidents.json": {"page": page, "incidents": [incident_json(i, changed) for i in recent]},
        "incidents/unresolved.json": {
            "page": page,
            "incidents": [incident_json(i, changed) for i in unresolved],
        },
        "scheduled-maintenances.json": {
            "page": page,
            "scheduled_maintenances": [maintenance_json(m, changed) for m in maintenances],
        },
        "scheduled-maintenances/upcoming.json": {
            "page": page,
            "scheduled_maintenances": [maintenance_json(m, changed) for m in scheduled],
        },
        "scheduled-maintenances/active.json": {
            "page": page,
            "scheduled_maintenances": [maintenance_json(m, changed) for m in active],
        },
    }


def page_context() -> dict:
    """What the HTML status page shows (live and exported)."""
    unresolved = public_incidents(unresolved_only=True)
    statuses = component_statuses(unresolved)
    maintenances = _maintenances()
    recent = public_incidents()
    services = [
        {"name": c["name"], "status": c["status"], "label": c["status"].replace("_", " ")}
        for c in components(statuses, component_changes_record(statuses))
    ]
    return {
        "page": page_json(),
        "status": overall_status(unresolved, maintenances),
        "services": services,
        "active": unresolved,
        "history": [i for i in recent if public_state(i) == IncidentState.RESOLVED],
        "maintenances": [m for m in maintenances if m.status != Maintenance.Status.COMPLETED],
        "generated_at": timezone.now(),
    }


def atom_feed() -> str:
    """Incident history as Atom, one entry per incident, newest first."""
    name = page_json()["name"]
    feed = feedgenerator.Atom1Feed(
        title=f"{name} - incident history",
        link=page_url(),
        description="Incidents and their updates",
        feed_url=f"{settings.BREAKGLASS_BASE_URL}/history.atom",
        language="en",
        feed_guid=f"{page_url()}history",
        # RFC 4287 4.1.1: a feed whose entries carry no author must have one itself.
        author_name=name,
        author_link=page_url(),
    )
    for incident in public_incidents():
        updates = incident.public_updates
        content = "\n\n".join(
            f"{u.published_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC "
            + (f"{u.state_heading}: " if u.state_heading else "")
            + u.body
            for u in updates
        )
        feed.add_item(
            title=f"{incident.title} ({IncidentState(public_state(incident)).label})",
            link=f"{page_url()}#{incident.reference}",
            # Atom1Feed writes the description as <summary type="html">: the bodies are
            # plain text written by people, so they are escaped (an update quoting
            # `<img onerror=...>` must reach readers as text, not as markup).
            description=escape(content).replace("\n", "<br>"),
            unique_id=f"tag:breakglass,2026:incident/{incident.reference}",
            pubdate=incident.declared_at,
            updateddate=updates[0].published_at if updates else incident.declared_at,
        )
    return feed.writeString("utf-8")
