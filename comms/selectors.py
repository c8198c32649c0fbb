"""Reads for incidents: the merged timeline, delivery reports and cadence figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.utils import timezone

from breakglass.access.models import Grant
from breakglass.accounts import roles
from breakglass.outbox.models import OutboxMessage
from comms.models import (
    Audience,
    Incident,
    IncidentState,
    Severity,
    StatusUpdate,
    Subscriber,
    Webhook,
)


def user_can_manage_webhooks(user) -> bool:
    """Webhooks make the platform send requests where their URL says, and their URLs are
    often secrets: communications leads and administrators only. Everyone else who may
    see the list sees redacted URLs (comms.egress.url_redacted)."""
    from breakglass.accounts import roles

    return roles.user_has_role(user, roles.COMMS_LEAD) or roles.user_has_role(
        user, roles.ADMINISTRATOR
    )


def real_sev1_incidents():
    """Open non-drill SEV1 incidents: drills' kill switch engages while there is one (the
    drill engine also asks this inside the UPDATE that starts each step)."""
    return Incident.objects.filter(severity=Severity.SEV1, drill=False).exclude(
        state=IncidentState.RESOLVED
    )


def real_sev1_open() -> bool:
    """A non-drill SEV1 is open: drills' kill switch engages while this is true."""
    return real_sev1_incidents().exists()


@dataclass
class TimelineItem:
    at: datetime
    kind: str  # note, role, state, declared, review, override, cadence, impact, update, grant
    body: str
    internal: bool
    actor: str = ""
    update: StatusUpdate | None = None


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
        grants = Grant.objects.filter(incident_ref=incident.reference).select_related(
            "path", "requester"
        )
        for grant in grants.order_by("pk"):
            items.append(
                TimelineItem(
                    at=grant.issued_at or grant.created_at,
                    kind="grant",
                    body=f"break-glass grant #{grant.pk} on {grant.path} ({grant.state})"
                    + (" — emergency self-issue" if grant.emergency else ""),
                    internal=True,
                    actor=grant.requester.get_username() if grant.requester else "",
                )
            )
    items.sort(key=lambda item: item.at)
    return items


def status_update_audience(*, update: StatusUpdate) -> dict[str, list[int]]:
    """Who receives this update, as user, subscriber and webhook ids (the fan-out freezes
    this list). Internal updates reach responders, incident commanders and communications
    leads with an e-mail address; external ones reach active subscribers of an affected
    service (or of every service) and active webhooks. Drill incidents reach drill
    subscribers and drill webhooks only; real ones never reach them."""
    incident = update.incident
    if update.audience == Audience.INTERNAL:
        users = (
            get_user_model()
            .objects.filter(
                is_active=True,
                groups__name__in=[roles.RESPONDER, roles.INCIDENT_COMMANDER, roles.COMMS_LEAD],
            )
            .exclude(email="")
            .distinct()
            .order_by("pk")
        )
        return {"user": list(users.values_list("pk", flat=True))}
    service_ids = list(incident.affected.values_list("service_id", flat=True))
    subscribers = (
        Subscriber.objects.active()
        .filter(drill=incident.drill)
        .filter(Q(services__isnull=True) | Q(services__in=service_ids))
        .distinct()
        .order_by("pk")
    )
    hooks = Webhook.objects.filter(drill=incident.drill, active=True).order_by("pk")
    return {
        "sub": list(subscribers.values_list("pk", flat=True)),
        "hook": list(hooks.values_list("pk", flat=True)),
    }


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


def external_update_due(*, incident: Incident, latest: StatusUpdate | None) -> datetime | None:
    """When the next external update is due: the time the latest published one promised,
    or, before the first, one cadence after the incident was declared. None when the
    latest was a final update. The cadence check escalates by this, the room shows it."""
    if latest is None:
        return incident.declared_at + timedelta(minutes=incident.cadence_minutes)
    return latest.next_update_at


def incident_cadence(*, incident: Incident, now: datetime | None = None) -> dict:
    """The cadence clock and the measured figures: when the next external update is due
    (the first one included), time to the first external update, and how many external
    updates arrived by the time the previous one promised."""
    now = now or timezone.now()
    published = list(
        incident.updates.filter(
            audience=Audience.EXTERNAL, status=StatusUpdate.Status.PUBLISHED
        ).order_by("published_at")
    )
    first = published[0] if published else None
    latest = published[-1] if published else None
    next_due = external_update_due(incident=incident, latest=latest) if incident.is_open else None
    return {
        "cadence_minutes": incident.cadence_minutes,
        "published": len(published),
        "first_external_at": first.published_at if first else None,
        "first_external_seconds": (
            int((first.published_at - incident.declared_at).total_seconds()) if first else None
        ),
        "on_time": sum(1 for u in published if u.on_time is True),
        "late": sum(1 for u in published if u.on_time is False),
        "next_due_at": next_due,
        "first_due": next_due is not None and latest is None,
        "overdue": bool(next_due and now > next_due),
        "seconds_left": int((next_due - now).total_seconds()) if next_due else None,
    }


def incidents_for_console(*, include_resolved: bool = True):
    qs = Incident.objects.select_related("commander", "comms_lead")
    if not include_resolved:
        qs = qs.exclude(state=IncidentState.RESOLVED)
    return qs
