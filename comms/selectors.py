"""Reads for incidents: the merged timeline, delivery reports and cadence figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.apps import apps
from django.db.models import Count
from django.utils import timezone

from breakglass.outbox.models import OutboxMessage
from comms.models import Audience, Incident, IncidentState, Severity, StatusUpdate


def user_can_manage_webhooks(user) -> bool:
    """Webhooks make the platform send requests where their URL says, and their URLs are
    often secrets: communications leads and administrators only. Everyone else who may
    see the list sees redacted URLs (comms.egress.url_redacted)."""
    from breakglass.accounts import roles

    return roles.user_has_role(user, roles.COMMS_LEAD) or roles.user_has_role(
        user, roles.ADMINISTRATOR
    )


def real_sev1_open() -> bool:
    """A non-drill SEV1 is open: drills' kill switch engages while this is true."""
    return (
        Incident.objects.filter(severity=Severity.SEV1, drill=False)
        .exclude(state=IncidentState.RESOLVED)
        .exists()
    )


@dataclass
class TimelineItem:
    at: datetime
    kind: str  # note, role, state, declared, review, override, cadence, impact, update, grant
    body: str
    internal: bool
    actor: str = ""
    update: StatusUpdate | None = None


def _grants_for(incident: Incident) -> list:
    try:
        grant_model = apps.get_model("breakglass", "Grant")
    except LookupError:  # the grants work has not landed in this checkout
        return []
    return list(grant_model.objects.filter(incident_ref=incident.reference).order_by("pk"))


def incident_timeline(*, incident: Incident, public: bool = False) -> list[TimelineItem]:
    """Status updates, role and state changes, notes and the break-glass grants that name
    this incident, in time order. `public=True` keeps only published external updates:
    internal entries never reach public output."""
    items: list[TimelineItem] = []
    updates = incident.updates.select_related("author", "reviewer", "publisher")
    if public:
        updates = updates.filter(audience=Audience.EXTERNAL, status=StatusUpdate.Status.PUBLISHED)
    for update in updates:
        items.append(
            TimelineItem(
                at=update.published_at or update.created_at,
                kind="update",
                body=update.body,
                internal=update.audience == Audience.INTERNAL
                or update.status != StatusUpdate.Status.PUBLISHED,
                actor=update.author.get_username(),
                update=update,
            )
        )
    if not public:
        for entry in incident.entries.select_related("actor"):
            items.append(
                TimelineItem(
                    at=entry.created_at,
                    kind=entry.kind,
                    body=entry.body,
                    internal=entry.internal,
                    actor=entry.actor.get_username() if entry.actor else "system",
                )
            )
        for grant in _grants_for(incident):
            at = getattr(grant, "issued_at", None) or getattr(grant, "created_at", None)
            requester = getattr(grant, "requester", None)
            path = getattr(grant, "path", None)
            state = getattr(grant, "state", "")
            items.append(
                TimelineItem(
                    at=at or incident.declared_at,
                    kind="grant",
                    body=f"break-glass grant #{grant.pk} on {path} ({state})"
                    + (" — emergency self-issue" if getattr(grant, "emergency", False) else ""),
                    internal=True,
                    actor=requester.get_username() if requester else "",
                )
            )
    items.sort(key=lambda item: item.at)
    return items


FANOUT_KINDS = ("comms_fanout", "comms_fanout_batch")


def update_deliveries(*, update: StatusUpdate) -> dict:
    """Per-update delivery report from the outbox rows (the delivery records)."""
    rows = OutboxMessage.objects.filter(source=update.outbox_source).exclude(kind__in=FANOUT_KINDS)
    counts = {row["state"]: row["n"] for row in rows.values("state").annotate(n=Count("id"))}
    failed = list(
        rows.filter(state=OutboxMessage.State.DEAD).values(
            "pk", "kind", "recipient", "last_error", "attempts"
        )[:200]
    )
    retrying = list(
        rows.filter(state=OutboxMessage.State.PENDING, attempts__gt=0).values(
            "pk", "kind", "recipient", "last_error", "attempts"
        )[:200]
    )
    fanout_states = set(
        OutboxMessage.objects.filter(
            source=update.outbox_source, kind__in=FANOUT_KINDS
        ).values_list("state", flat=True)
    )
    return {
        "delivered": counts.get(OutboxMessage.State.DELIVERED, 0),
        "pending": counts.get(OutboxMessage.State.PENDING, 0)
        + counts.get(OutboxMessage.State.SENDING, 0),
        "failed": counts.get(OutboxMessage.State.DEAD, 0),
        "total": sum(counts.values()),
        "failures": failed,
        "retrying": retrying,
        # "delivered" once the fan-out and all its batches have written their rows.
        "fanout_state": (
            None
            if not fanout_states
            else "delivered"
            if fanout_states == {OutboxMessage.State.DELIVERED}
            else "in progress"
        ),
    }


def incident_cadence(*, incident: Incident, now: datetime | None = None) -> dict:
    """The cadence clock and the measured figures: time to the first external update and
    how many external updates arrived by the time the previous one promised."""
    now = now or timezone.now()
    published = list(
        incident.updates.filter(
            audience=Audience.EXTERNAL, status=StatusUpdate.Status.PUBLISHED
        ).order_by("published_at")
    )
    first = published[0] if published else None
    latest = published[-1] if published else None
    next_due = latest.next_update_at if latest else None
    return {
        "cadence_minutes": incident.cadence_minutes,
        "first_external_seconds": (
            int((first.published_at - incident.declared_at).total_seconds()) if first else None
        ),
        "on_time": sum(1 for u in published if u.on_time is True),
        "late": sum(1 for u in published if u.on_time is False),
        "next_due_at": next_due if incident.is_open else None,
        "overdue": bool(incident.is_open and next_due and now > next_due),
        "seconds_left": int((next_due - now).total_seconds()) if next_due else None,
    }


def incidents_for_console(*, include_resolved: bool = True):
    qs = Incident.objects.select_related("commander", "comms_lead")
    if not include_resolved:
        qs = qs.exclude(state=IncidentState.RESOLVED)
    return qs
