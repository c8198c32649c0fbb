"""Demo data for comms, called by `manage.py seed_demo`. Idempotent: running it twice
leaves one of everything."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from breakglass.access.models import CriticalService
from breakglass.accounts import roles
from comms.defaults import DEFAULT_TEMPLATES
from comms.models import (
    AffectedService,
    Audience,
    Impact,
    Incident,
    IncidentState,
    Maintenance,
    StatusUpdate,
    Subscriber,
    TimelineEntry,
    UpdateTemplate,
)

HISTORY = [
    ("Elevated login errors", 3, 12, "sso", Impact.DEGRADED),
    ("VPN unreachable for some regions", 2, 40, "vpn", Impact.PARTIAL),
]


class _Quiet:
    def write(self, text: str) -> None:
        pass


def _person(username: str, role: str):
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None:
        user = user_model.objects.filter(groups__name=role).order_by("pk").first()
    return user


@transaction.atomic
def seed_demo(*, stdout=None) -> None:
    stdout = stdout or _Quiet()
    for name, state, audience, body in DEFAULT_TEMPLATES:
        UpdateTemplate.objects.get_or_create(
            name=name, defaults={"state": state, "audience": audience, "body": body}
        )
    services = list(CriticalService.objects.order_by("tier", "name"))
    author = (
        _person("cody", roles.COMMS_LEAD)
        or get_user_model().objects.filter(is_superuser=True).first()
    )
    reviewer = _person("ines", roles.INCIDENT_COMMANDER) or author
    now = timezone.now()

    # Subscribers: confirmed demo addresses (example.test never resolves) and a drill one.
    for i in range(1, 4):
        sub, created = Subscriber.objects.get_or_create(
            email=f"subscriber{i}@example.test", drill=False, defaults={"created_at": now}
        )
        if created:
            sub.confirmed_at = now
            sub.save(update_fields=["confirmed_at"])
    drill_sub, created = Subscriber.objects.get_or_create(
        email="drill-watchers@example.test", drill=True, defaults={"created_at": now}
    )
    if created:
        drill_sub.confirmed_at = now
        drill_sub.save(update_fields=["confirmed_at"])

    if author is None or not services:
        stdout.write("comms: no users or services yet; seeded templates and subscribers only")
        return
    by_slug = {s.slug: s for s in services}

    # Past, resolved incidents for the public history.
    for title, severity, days_ago, slug, impact in HISTORY:
        if Incident.objects.filter(title=title).exists():
            continue
        started = now - timedelta(days=days_ago)
        incident = Incident.objects.create(
            reference=f"INC-{started.year}-9{days_ago:03d}",
            title=title,
            severity=severity,
            state=IncidentState.RESOLVED,
            commander=reviewer,
            comms_lead=author,
            declared_by=author,
            declared_at=started,
            identified_at=started + timedelta(minutes=20),
            resolved_at=started + timedelta(minutes=75),
        )
        service = by_slug.get(slug, services[0])
        AffectedService.objects.create(incident=incident, service=service, impact=impact)
        for minutes, state, text in (
            (5, IncidentState.INVESTIGATING, f"We are looking into problems with {service.name}."),
            (20, IncidentState.IDENTIFIED, "We have found the cause; a fix is being rolled out."),
            (75, IncidentState.RESOLVED, f"Everything is back to normal for {service.name}."),
        ):
            at = started + timedelta(minutes=minutes)
            StatusUpdate.objects.create(
                incident=incident,
                audience=Audience.EXTERNAL,
                incident_state=state,
                body=text,
                status=StatusUpdate.Status.PUBLISHED,
                author=author,
                reviewer=reviewer,
                reviewed_at=at,
                publisher=author,
                published_at=at,
                next_update_at=None
                if state == IncidentState.RESOLVED
                else at + timedelta(minutes=30),
                on_time=None if minutes == 5 else True,
                created_at=at,
            )
        TimelineEntry.objects.create(
            incident=incident,
            kind=TimelineEntry.Kind.DECLARED,
            body="declared (demo history)",
            actor=author,
            created_at=started,
        )

    # A drill incident: visible in the console, never on the public page.
    if not Incident.objects.filter(drill=True, title="Game day: identity provider down").exists():
        started = now - timedelta(days=3)
        drill = Incident.objects.create(
            reference=f"INC-{started.year}-9900",
            title="Game day: identity provider down",
            severity=1,
            state=IncidentState.RESOLVED,
            drill=True,
            commander=reviewer,
            comms_lead=author,
            declared_by=author,
            declared_at=started,
            resolved_at=started + timedelta(minutes=30),
        )
        AffectedService.objects.create(
            incident=drill, service=by_slug.get("sso", services[0]), impact=Impact.MAJOR
        )
        TimelineEntry.objects.create(
            incident=drill,
            kind=TimelineEntry.Kind.DECLARED,
            body="drill declared (demo)",
            actor=author,
            created_at=started,
        )

    if not Maintenance.objects.filter(name="Database failover rehearsal").exists():
        maintenance = Maintenance.objects.create(
            name="Database failover rehearsal",
            body="Planned failover of the primary database; brief read-only periods expected.",
            scheduled_for=now + timedelta(days=2),
            scheduled_until=now + timedelta(days=2, hours=1),
            created_at=now,
        )
        maintenance.services.set(services[:1])
    stdout.write(
        "comms: templates, 3 subscribers + 1 drill subscriber, 2 past incidents, a drill "
        "incident and a maintenance window. Declare a SEV1 at /comms/declare/ (as ines, "
        "with cody as communications lead); the public page is /status/.\n"
    )
