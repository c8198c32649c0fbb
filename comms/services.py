"""Writes for incidents, status updates, subscribers and webhooks.

Each service is one transaction that records an audit event and enqueues its side effects
in the outbox, so an action and its notifications exist together or not at all. Bad input
raises ValidationError with a message meant for people; a permission problem raises
PermissionDenied.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from breakglass.accounts import roles
from breakglass.audit.services import audit_record
from breakglass.outbox.models import OutboxMessage
from breakglass.outbox.services import outbox_enqueue, outbox_retry
from comms.models import (
    AffectedService,
    Audience,
    Impact,
    Incident,
    IncidentState,
    Severity,
    StatusUpdate,
    Subscriber,
    TimelineEntry,
    Webhook,
)
from comms.templating import template_render

ROLE_FIELDS = {"commander": "incident commander", "comms_lead": "communications lead"}
ACTING_ROLES = (roles.RESPONDER, roles.INCIDENT_COMMANDER, roles.COMMS_LEAD, roles.ADMINISTRATOR)


def comms_can_act(user) -> bool:
    return any(roles.user_has_role(user, role) for role in ACTING_ROLES)


def _require_actor(user) -> None:
    if not comms_can_act(user):
        raise PermissionDenied("Only responders, commanders and communications leads can do this.")


def _label(user) -> str:
    if user is None:
        return "nobody"
    return user.get_full_name() or user.get_username()


def _notify(*, key: str, to: str, subject: str, body: str, source: str = "") -> None:
    if to:
        outbox_enqueue(
            kind="email",
            idempotency_key=key,
            recipient=to,
            payload={"subject": subject, "body": body, "to": [to]},
            source=source,
        )


def _entry(incident: Incident, kind: str, body: str, *, actor=None, internal=True, at=None):
    return TimelineEntry.objects.create(
        incident=incident,
        kind=kind,
        body=body,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        internal=internal,
        created_at=at or timezone.now(),
    )


def _incident_url(incident: Incident) -> str:
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
    _require_actor(actor)
    title = (title or "").strip()
    if not title:
        raise ValidationError("An incident needs a title.")
    if severity not in Severity.values:
        raise ValidationError("Severity must be SEV1, SEV2, SEV3 or SEV4.")
    if severity <= Severity.SEV2 and comms_lead is None:
        raise ValidationError(
            f"A {Severity(severity).label} cannot be declared without a communications lead."
        )
    for _service, impact in services or []:
        if impact not in Impact.values:
            raise ValidationError(f"Unknown impact {impact!r}.")
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
            raise ValidationError("Could not allocate an incident reference; try again.")
        for service, impact in services or []:
            AffectedService.objects.create(incident=incident, service=service, impact=impact)
        kind = "drill " if drill else ""
        _entry(
            incident,
            TimelineEntry.Kind.DECLARED,
            f"{kind}{incident.get_severity_display()} declared by {_label(actor)}",
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
    _entry(
        incident,
        TimelineEntry.Kind.ROLE,
        f"{name}: {_label(old)} → {_label(new)} (by {_label(actor)})",
        actor=actor,
    )
    if new is not None:
        _notify(
            key=f"comms.role:{incident.pk}:{field}:{new.pk}:{timezone.now().timestamp()}",
            to=new.email,
            subject=f"[{incident.reference}] You are the {name}",
            body=f"You are now the {name} for {incident.reference} {incident.title}.\n"
            f"{_incident_url(incident)}",
        )


def incident_role_assign(*, incident: Incident, role: str, user, actor) -> Incident:
    if role not in ROLE_FIELDS:
        raise ValidationError(f"Unknown role {role!r}.")
    _require_actor(actor)
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        if role == "comms_lead" and user is None and incident.severity <= Severity.SEV2:
            raise ValidationError(
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


def _apply_state(incident: Incident, state: str, now: datetime) -> None:
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
        raise ValidationError(f"Unknown state {state!r}.")
    _require_actor(actor)
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        old = incident.state
        if old == state:
            return incident
        _apply_state(incident, state, timezone.now())
        incident.save()
        _entry(
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
        raise ValidationError(f"Unknown impact {impact!r}.")
    _require_actor(actor)
    with transaction.atomic():
        AffectedService.objects.update_or_create(
            incident=incident, service=service, defaults={"impact": impact}
        )
        _entry(
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
    _require_actor(actor)
    url = (url or "").strip()
    if url and not url.startswith(("http://", "https://")):
        raise ValidationError("A postmortem link must be an http(s) URL.")
    with transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(postmortem_url=url)
        _entry(
            incident, TimelineEntry.Kind.NOTE, f"postmortem: {url or 'link removed'}", actor=actor
        )
        audit_record(
            action="comms.incident.postmortem_linked", actor=actor, obj=incident, data={"url": url}
        )
    incident.refresh_from_db()
    return incident


def incident_note_add(*, incident: Incident, body: str, actor) -> TimelineEntry:
    """Notes are internal: they never reach the status page, feeds or subscribers."""
    _require_actor(actor)
    body = (body or "").strip()
    if not body:
        raise ValidationError("A note cannot be empty.")
    with transaction.atomic():
        entry = _entry(incident, TimelineEntry.Kind.NOTE, body, actor=actor)
        audit_record(action="comms.incident.note_added", actor=actor, obj=incident, data={})
    return entry


# --- Status updates ------------------------------------------------------------------------


def update_variables(*, incident: Incident, state: str, next_update_at: datetime | None) -> dict:
    affected = list(incident.affected.select_related("service"))
    return {
        "reference": incident.reference,
        "title": incident.title,
        "severity": incident.get_severity_display(),
        "state": IncidentState(state).label,
        "affected_services": ", ".join(a.service.name for a in affected) or "none",
        "impact": "; ".join(f"{a.service.name}: {a.get_impact_display()}" for a in affected)
        or "no services affected",
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
    _require_actor(actor)
    if audience not in Audience.values:
        raise ValidationError(f"Unknown audience {audience!r}.")
    state = state or incident.state
    if state not in IncidentState.values:
        raise ValidationError(f"Unknown state {state!r}.")
    now = timezone.now()
    if state == IncidentState.RESOLVED:
        next_update_at = None
    else:
        next_update_at = next_update_at or now + timedelta(minutes=incident.cadence_minutes)
        if next_update_at <= now:
            raise ValidationError("The next update must be promised for a time in the future.")
    text = status_update_render(
        incident=incident, body=body or "", state=state, next_update_at=next_update_at
    )
    if not text:
        raise ValidationError("An update cannot be empty.")
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
    _require_actor(reviewer)
    with transaction.atomic():
        update = StatusUpdate.objects.select_for_update().get(pk=update.pk)
        if update.status not in (StatusUpdate.Status.DRAFT, StatusUpdate.Status.REJECTED):
            raise ValidationError(f"This update is {update.get_status_display().lower()}.")
        if update.author_id == reviewer.pk:
            raise ValidationError("The author cannot review their own update; ask a second person.")
        update.status = StatusUpdate.Status.APPROVED if approve else StatusUpdate.Status.REJECTED
        update.reviewer = reviewer
        update.reviewed_at = timezone.now()
        update.review_notes = notes
        update.save()
        verdict = "approved" if approve else "sent back"
        _entry(
            update.incident,
            TimelineEntry.Kind.REVIEW,
            f"update #{update.pk} {verdict} by {_label(reviewer)}"
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
    _require_actor(actor)
    now = timezone.now()
    with transaction.atomic():
        update = StatusUpdate.objects.select_for_update().get(pk=update.pk)
        incident = Incident.objects.select_for_update().get(pk=update.incident_id)
        if update.status == StatusUpdate.Status.PUBLISHED:
            raise ValidationError("This update is already published.")
        needs_review = update.audience == Audience.EXTERNAL
        if needs_review and update.status != StatusUpdate.Status.APPROVED:
            if not override:
                raise ValidationError(
                    "External updates need an approving review by a second person before "
                    "they are published (or the audited emergency override)."
                )
            reason = (reason or "").strip()
            if not reason:
                raise ValidationError("The emergency override needs a reason.")
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
            _apply_state(incident, update.incident_state, now)
            incident.save()
            _entry(
                incident,
                TimelineEntry.Kind.STATE,
                f"state: {IncidentState(old).label} → {IncidentState(incident.state).label}",
                actor=actor,
            )
        incident.save(update_fields=["updated_at"])
        data = {"incident": incident.reference, "audience": update.audience}
        if update.override_reason:
            data["override_reason"] = update.override_reason
            _entry(
                incident,
                TimelineEntry.Kind.OVERRIDE,
                f"update #{update.pk} published WITHOUT REVIEW by {_label(actor)}: {reason}",
                actor=actor,
            )
            for person in reviewers_for(incident):
                if person.pk == actor.pk:
                    continue
                _notify(
                    key=f"comms.override:{update.pk}:{person.pk}",
                    to=person.email,
                    subject=f"[{incident.reference}] Update published without review",
                    body=f"{_label(actor)} published an external update without review.\n"
                    f"Reason: {reason}\n\n{update.body}\n\n{_incident_url(incident)}",
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
    _require_actor(actor)
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


def _clean_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError(f"{email!r} is not a valid e-mail address.") from None
    return email


def subscriber_subscribe(*, email: str, services=(), drill: bool = False) -> Subscriber:
    """Double opt-in: nothing is sent to the address until its owner clicks the link."""
    email = _clean_email(email)
    now = timezone.now()
    with transaction.atomic():
        subscriber, created = Subscriber.objects.select_for_update().get_or_create(
            email=email, drill=drill, defaults={"created_at": now}
        )
        if not created and subscriber.unsubscribed_at is not None:
            # Coming back: confirm again, with a fresh token.
            subscriber.unsubscribed_at = None
            subscriber.confirmed_at = None
            subscriber.token = Subscriber._meta.get_field("token").default()
            subscriber.save()
        subscriber.services.set(services)
        if subscriber.confirmed_at is None:
            link = f"{settings.BREAKGLASS_BASE_URL}/status/subscribe/confirm/{subscriber.token}/"
            # Keyed by token: subscribing twice does not mail the address twice.
            outbox_enqueue(
                kind="email",
                idempotency_key=f"comms.confirm:{subscriber.token}",
                recipient=email,
                payload={
                    "subject": "Confirm your status update subscription",
                    "body": "Someone (hopefully you) asked to receive incident updates at "
                    f"this address.\nConfirm: {link}\n\nIf it was not you, ignore this "
                    "message and nothing more will be sent.",
                    "to": [email],
                },
                source=f"comms.subscriber:{subscriber.pk}",
            )
        audit_record(
            action="comms.subscriber.subscribed",
            obj=subscriber,
            data={"drill": drill, "services": [s.slug for s in services]},
        )
    return subscriber


def subscriber_confirm(*, token: str) -> Subscriber:
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(token=token).first()
        if subscriber is None or subscriber.unsubscribed_at is not None:
            raise ValidationError("This confirmation link is not valid (any more).")
        if subscriber.confirmed_at is None:
            subscriber.confirmed_at = timezone.now()
            subscriber.save(update_fields=["confirmed_at"])
            audit_record(action="comms.subscriber.confirmed", obj=subscriber, data={})
    return subscriber


def subscriber_unsubscribe(*, token: str) -> Subscriber:
    """One click, idempotent: a second click changes nothing and is not an error."""
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(token=token).first()
        if subscriber is None:
            raise ValidationError("This unsubscribe link is not valid.")
        if subscriber.unsubscribed_at is None:
            subscriber.unsubscribed_at = timezone.now()
            subscriber.save(update_fields=["unsubscribed_at"])
            audit_record(action="comms.subscriber.unsubscribed", obj=subscriber, data={})
    return subscriber


# --- Webhooks ------------------------------------------------------------------------------

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def webhook_url_validate(url: str) -> str:
    """Refuse anything but http(s), and refuse the platform itself (a webhook pointing at
    Breakglass would let anyone who can create webhooks make it call its own endpoints).
    Other loopback and private addresses are allowed so receivers can run beside it; see
    docs/comms.md for the SSRF trade-off."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("A webhook URL must start with http:// or https:// and name a host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValidationError("The webhook URL has an invalid port.") from None
    base = urlsplit(settings.BREAKGLASS_BASE_URL)
    base_port = base.port or (443 if base.scheme == "https" else 80)
    host = parts.hostname.lower().rstrip(".")
    base_host = (base.hostname or "").lower().rstrip(".")
    same_host = host == base_host or (_is_loopback(host) and _is_loopback(base_host))
    if same_host and port == base_port:
        raise ValidationError("A webhook cannot point at this platform itself.")
    return url


def webhook_create(
    *, name: str, url: str, owner, format: str = Webhook.Format.JSON, drill: bool = False
) -> Webhook:
    _require_actor(owner)
    url = webhook_url_validate(url)
    name = (name or "").strip()
    if not name:
        raise ValidationError("A webhook needs a name.")
    if format not in Webhook.Format.values:
        raise ValidationError(f"Unknown webhook format {format!r}.")
    with transaction.atomic():
        webhook = Webhook.objects.create(
            name=name, url=url, format=format, owner=owner, drill=drill, created_at=timezone.now()
        )
        audit_record(
            action="comms.webhook.created",
            actor=owner,
            obj=webhook,
            data={"url": url, "format": format, "drill": drill},
        )
    return webhook


def webhook_enable(*, webhook: Webhook, actor) -> Webhook:
    _require_actor(actor)
    with transaction.atomic():
        Webhook.objects.filter(pk=webhook.pk).update(
            active=True, consecutive_failures=0, disabled_reason=""
        )
        audit_record(action="comms.webhook.enabled", actor=actor, obj=webhook, data={})
    webhook.refresh_from_db()
    return webhook


# --- Cadence -------------------------------------------------------------------------------


def _remind_before(incident: Incident) -> timedelta:
    return timedelta(minutes=min(5, max(1, incident.cadence_minutes // 3)))


def _escalate_first_update(incident: Incident, now: datetime) -> int:
    """No external update at all within one cadence of declaring: escalate, once. The
    outbox key is the once-only guard (a second enqueue returns None)."""
    due = incident.declared_at + timedelta(minutes=incident.cadence_minutes)
    if now <= due:
        return 0
    people = [p for p in (incident.commander, incident.comms_lead) if p is not None]
    with transaction.atomic():
        first = outbox_enqueue(
            kind="email",
            idempotency_key=f"comms.first-overdue:{incident.pk}",
            recipient=", ".join(p.email for p in people),
            payload={
                "subject": f"[{incident.reference}] No external update yet",
                "body": f"{incident.reference} was declared at {incident.declared_at:%H:%M} UTC "
                f"and nothing has been published externally.\n{_incident_url(incident)}",
                "to": [p.email for p in people if p.email] or ["security@localhost"],
            },
        )
        if first is None:
            return 0
        _entry(
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
        if latest.next_update_at is None:
            continue
        due = latest.next_update_at
        if now >= due - _remind_before(incident):
            with transaction.atomic():
                if StatusUpdate.objects.filter(pk=latest.pk, reminder_sent_at__isnull=True).update(
                    reminder_sent_at=now
                ):
                    reminded += 1
                    lead = incident.comms_lead
                    _entry(
                        incident,
                        TimelineEntry.Kind.CADENCE,
                        f"reminder: next external update due {due:%H:%M} UTC (to {_label(lead)})",
                        at=now,
                    )
                    _notify(
                        key=f"comms.remind:{latest.pk}",
                        to=lead.email if lead else "",
                        subject=f"[{incident.reference}] Next update due at {due:%H:%M} UTC",
                        body=f"The last update promised the next one by {due:%H:%M} UTC.\n"
                        f"Draft it now: {_incident_url(incident)}",
                    )
        if now > due:
            with transaction.atomic():
                if StatusUpdate.objects.filter(pk=latest.pk, escalated_at__isnull=True).update(
                    escalated_at=now
                ):
                    escalated += 1
                    late = int((now - due).total_seconds() // 60)
                    _entry(
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
                        _notify(
                            key=f"comms.escalate:{latest.pk}:{person.pk}",
                            to=person.email,
                            subject=f"[{incident.reference}] External update OVERDUE",
                            body=f"The update promised for {due:%H:%M} UTC is {late} minutes "
                            f"late.\n{_incident_url(incident)}",
                        )
    return {"reminded": reminded, "escalated": escalated}
