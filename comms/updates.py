"""Status updates: drafting from templates, second-person review, publishing and resending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from breakglass.accounts import roles
from breakglass.audit.services import audit_record
from breakglass.outbox.models import OutboxMessage
from breakglass.outbox.services import outbox_enqueue, outbox_retry
from comms.errors import CommsError
from comms.incidents import (
    incident_state_apply,
    incident_url,
    mail_notify,
    require_actor,
    timeline_add,
    user_label,
)
from comms.models import (
    Audience,
    Impact,
    Incident,
    IncidentState,
    StatusUpdate,
    TimelineEntry,
)
from comms.statuspage import component_changes_record, component_statuses
from comms.templating import template_render


def words_list(items: list[str]) -> str:
    """ "DNS", "DNS and SSO", "DNS, SSO and VPN": a list as a sentence writes it."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


# How a sentence names each impact: "We are looking into a major outage of DNS."
IMPACT_PHRASES = {
    Impact.MAJOR: "a major outage of {}",
    Impact.PARTIAL: "a partial outage of {}",
    Impact.DEGRADED: "degraded performance of {}",
}


def _phrases_joined(phrases: list[str]) -> str:
    # "a major outage of DNS and SSO, and degraded performance of VPN": a comma keeps the
    # two "and"s apart.
    if len(phrases) > 1 and any(" and " in phrase for phrase in phrases):
        return f"{', '.join(phrases[:-1])}, and {phrases[-1]}"
    return words_list(phrases)


def update_variables(*, incident: Incident, state: str, next_update_at: datetime | None) -> dict:
    """The values a template may use, each worded to sit inside a sentence: services as
    "DNS and SSO", the impact as "a major outage of DNS and degraded performance of SSO".
    A service is named once per variable, so "problems with {{ affected_services }}" and
    "{{ impact }}" never repeat the services back to back inside one phrase."""
    affected = list(incident.affected.select_related("service"))
    services = words_list([a.service.name for a in affected]) or "our services"
    phrases = [
        phrase.format(words_list([a.service.name for a in affected if a.impact == impact]))
        for impact, phrase in IMPACT_PHRASES.items()
        if any(a.impact == impact for a in affected)
    ]
    return {
        "reference": incident.reference,
        "title": incident.title,
        "severity": incident.get_severity_display(),
        "state": IncidentState(state).label,
        "affected_services": services,
        # Services marked operational are left out; with none left: "problems with ...".
        "impact": _phrases_joined(phrases) or f"problems with {services}",
        "next_update_at": (
            next_update_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            if next_update_at
            else "no further updates planned"
        ),
        "status_page_url": f"{settings.BREAKGLASS_BASE_URL}/status/",
    }


def status_update_render(
    *, incident: Incident, body: str, state: str, next_update_at: datetime | None
) -> str:
    """The preview: what people would read. Raises ValidationError for unknown variables."""
    return template_render(
        body, update_variables(incident=incident, state=state, next_update_at=next_update_at)
    )


def status_update_draft(
    *,
    incident: Incident,
    audience: str,
    body: str,
    actor,
    state: str | None = None,
    next_update_at: datetime | None = None,
) -> StatusUpdate:
    """Draft an update. `body` is template text; it is rendered and stored as people read it.

    Every update except a resolving one promises its successor: with no time given, the
    severity's cadence sets it.
    """
    require_actor(actor)
    if audience not in Audience.values:
        raise CommsError(f"Unknown audience {audience!r}.")
    state = state or incident.state
    if state not in IncidentState.values:
        raise CommsError(f"Unknown state {state!r}.")
    now = timezone.now()
    if state == IncidentState.RESOLVED:
        next_update_at = None
    else:
        next_update_at = next_update_at or now + timedelta(minutes=incident.cadence_minutes)
        if next_update_at <= now:
            raise CommsError("The next update must be promised for a time in the future.")
    text = status_update_render(
        incident=incident, body=body or "", state=state, next_update_at=next_update_at
    )
    if not text:
        raise CommsError("An update cannot be empty.")
    with transaction.atomic():
        update = StatusUpdate.objects.create(
            incident=incident,
            audience=audience,
            incident_state=state,
            body=text,
            author=actor,
            next_update_at=next_update_at,
            created_at=now,
        )
        audit_record(
            action="comms.update.drafted",
            actor=actor,
            obj=update,
            data={"incident": incident.reference, "audience": audience, "state": state},
        )
    return update


def status_update_review(
    *, update: StatusUpdate, reviewer, approve: bool, notes: str = ""
) -> StatusUpdate:
    """A second person reads the draft before it goes out; the author cannot review it."""
    require_actor(reviewer)
    with transaction.atomic():
        update = StatusUpdate.objects.select_for_update().get(pk=update.pk)
        problem = update.review_problem(reviewer=reviewer)
        if problem:
            raise CommsError(problem)
        update.status = StatusUpdate.Status.APPROVED if approve else StatusUpdate.Status.REJECTED
        update.reviewer = reviewer
        update.reviewed_at = timezone.now()
        update.review_notes = notes
        update.save()
        verdict = "approved" if approve else "sent back"
        timeline_add(
            update.incident,
            TimelineEntry.Kind.REVIEW,
            f"update #{update.pk} {verdict} by {user_label(reviewer)}"
            + (f": {notes}" if notes else ""),
            actor=reviewer,
        )
        audit_record(
            action=f"comms.update.{'approved' if approve else 'rejected'}",
            actor=reviewer,
            obj=update,
            data={"incident": update.incident.reference, "notes": notes},
        )
    return update


def reviewers_for(incident: Incident) -> list:
    """Who is told when someone publishes without review: communications leads and the
    incident's commander."""
    users = get_user_model().objects.filter(groups__name=roles.COMMS_LEAD, is_active=True)
    people = {u.pk: u for u in users}
    for holder in (incident.commander, incident.comms_lead):
        if holder is not None:
            people[holder.pk] = holder
    return list(people.values())


def status_update_publish(
    *, update: StatusUpdate, actor, override: bool = False, reason: str = ""
) -> StatusUpdate:
    """Publish and fan out. External updates need an approving review, unless the
    emergency override is used: then a reason is required, it is audited, and reviewers
    are told. A second publish of the same update is refused, so nothing goes out twice."""
    require_actor(actor)
    now = timezone.now()
    with transaction.atomic():
        update = StatusUpdate.objects.select_for_update().get(pk=update.pk)
        incident = Incident.objects.select_for_update().get(pk=update.incident_id)
        problem = update.publish_problem(override=override)
        if problem:
            raise CommsError(problem)
        if update.needs_review_to_publish:
            reason = (reason or "").strip()
            if not reason:
                raise CommsError("The emergency override needs a reason.")
            update.override_reason = reason
        previous = (
            StatusUpdate.objects.filter(
                incident=incident,
                audience=update.audience,
                status=StatusUpdate.Status.PUBLISHED,
            )
            .order_by("-published_at")
            .first()
        )
        if previous is not None and previous.next_update_at is not None:
            update.on_time = now <= previous.next_update_at
        update.status = StatusUpdate.Status.PUBLISHED
        update.publisher = actor
        update.published_at = now
        update.save()
        if update.audience == Audience.EXTERNAL and incident.state != update.incident_state:
            old = incident.state
            incident_state_apply(incident, update.incident_state, now)
            incident.save()
            timeline_add(
                incident,
                TimelineEntry.Kind.STATE,
                f"state: {IncidentState(old).label} → {IncidentState(incident.state).label}",
                actor=actor,
            )
        incident.save(update_fields=["updated_at"])
        if update.audience == Audience.EXTERNAL and not incident.drill:
            # Before the audit append: its chain lock is held to commit (keep it short).
            component_changes_record(component_statuses(), now=now)
        data = {"incident": incident.reference, "audience": update.audience}
        if update.override_reason:
            data["override_reason"] = update.override_reason
            timeline_add(
                incident,
                TimelineEntry.Kind.OVERRIDE,
                f"update #{update.pk} published WITHOUT REVIEW by {user_label(actor)}: {reason}",
                actor=actor,
            )
            for person in reviewers_for(incident):
                if person.pk == actor.pk:
                    continue
                mail_notify(
                    key=f"comms.override:{update.pk}:{person.pk}",
                    to=person.email,
                    subject=f"[{incident.reference}] Update published without review",
                    body=f"{user_label(actor)} published an external update without review.\n"
                    f"Reason: {reason}\n\n{update.body}\n\n{incident_url(incident)}",
                    source=update.outbox_source,
                )
        audit_record(
            action="comms.update.override_published"
            if override and update.override_reason
            else "comms.update.published",
            actor=actor,
            obj=update,
            data=data,
        )
        outbox_enqueue(
            kind="comms_fanout",
            idempotency_key=f"comms.fanout:{update.pk}",
            payload={"update_id": update.pk},
            source=update.outbox_source,
        )
        if update.audience == Audience.EXTERNAL and not incident.drill:
            outbox_enqueue(
                kind="comms_status_export",
                idempotency_key=f"comms.export:{update.pk}",
                payload={"update_id": update.pk},
            )
    return update


def status_update_resend_failed(*, update: StatusUpdate, actor) -> int:
    """Re-queue the deliveries that gave up. Delivered rows are untouched (outbox_retry
    only moves dead rows), so nobody gets the update twice."""
    require_actor(actor)
    with transaction.atomic():
        dead = list(
            OutboxMessage.objects.filter(
                source=update.outbox_source, state=OutboxMessage.State.DEAD
            ).values_list("pk", flat=True)
        )
        count = outbox_retry(message_ids=dead) if dead else 0
        audit_record(
            action="comms.update.resend_failed",
            actor=actor,
            obj=update,
            data={"count": count},
        )
    return count


# --- Subscribers ---------------------------------------------------------------------------
