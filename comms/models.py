"""Incidents and what we tell people about them.

Shape borrowed from Netflix/dispatch: roles are pointers on the incident (commander,
communications lead), the update cadence hangs off the severity, and one timeline per
incident merges status updates, role changes, notes and the break-glass grants that
reference the incident. Delivery records are the outbox rows themselves
(`source="comms.statusupdate:<id>"`), so there is a single copy of delivery state.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC

from django.conf import settings
from django.db import models


class Severity(models.IntegerChoices):
    SEV1 = 1, "SEV1"
    SEV2 = 2, "SEV2"
    SEV3 = 3, "SEV3"
    SEV4 = 4, "SEV4"


class IncidentState(models.TextChoices):
    INVESTIGATING = "investigating", "Investigating"
    IDENTIFIED = "identified", "Identified"
    MONITORING = "monitoring", "Monitoring"
    RESOLVED = "resolved", "Resolved"


class Impact(models.TextChoices):
    # Values are the Atlassian Statuspage component statuses, so the API maps 1:1.
    OPERATIONAL = "operational", "Operational"
    DEGRADED = "degraded_performance", "Degraded performance"
    PARTIAL = "partial_outage", "Partial outage"
    MAJOR = "major_outage", "Major outage"


IMPACT_RANK = {Impact.OPERATIONAL: 0, Impact.DEGRADED: 1, Impact.PARTIAL: 2, Impact.MAJOR: 3}


class Audience(models.TextChoices):
    INTERNAL = "internal", "Internal"
    EXTERNAL = "external", "External (public)"


class Incident(models.Model):
    reference = models.CharField(max_length=30, unique=True)  # INC-2026-0042
    title = models.CharField(max_length=200)
    severity = models.PositiveSmallIntegerField(choices=Severity)
    state = models.CharField(
        max_length=20, choices=IncidentState, default=IncidentState.INVESTIGATING
    )
    drill = models.BooleanField(
        default=False, help_text="Drill incidents reach drill subscribers only, never the page."
    )
    commander = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="commanded_incidents",
    )
    comms_lead = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="comms_led_incidents",
    )
    postmortem_url = models.URLField(blank=True)
    declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    declared_at = models.DateTimeField()
    identified_at = models.DateTimeField(null=True, blank=True)
    monitoring_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-declared_at"]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    @property
    def is_open(self) -> bool:
        return self.state != IncidentState.RESOLVED

    @property
    def cadence_minutes(self) -> int:
        """Minutes between external updates (dispatch keeps the cadence on the priority;
        settings.COMMS_CADENCE_MINUTES, one value per severity)."""
        return settings.COMMS_CADENCE_MINUTES[self.severity]

    @property
    def statuspage_impact(self) -> str:
        return {1: "critical", 2: "major", 3: "minor", 4: "none"}[self.severity]


class AffectedService(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="affected")
    service = models.ForeignKey(
        "breakglass.CriticalService", on_delete=models.PROTECT, related_name="incident_impacts"
    )
    impact = models.CharField(max_length=30, choices=Impact, default=Impact.MAJOR)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["incident", "service"], name="comms_affected_once")
        ]
        ordering = ["service__name"]

    def __str__(self) -> str:
        return f"{self.service} {self.impact}"


class TimelineEntry(models.Model):
    """Notes, role changes and state changes. Status updates and grants are merged in
    by the timeline selector, so nothing is stored twice."""

    class Kind(models.TextChoices):
        NOTE = "note"
        ROLE = "role"
        STATE = "state"
        DECLARED = "declared"
        REVIEW = "review"
        OVERRIDE = "override"
        CADENCE = "cadence"
        IMPACT = "impact"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="entries")
    kind = models.CharField(max_length=20, choices=Kind)
    internal = models.BooleanField(default=True)
    body = models.TextField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.body[:50]}"


class UpdateTemplate(models.Model):
    """Django template text with a restricted set of variables (see comms.templating)."""

    name = models.CharField(max_length=100, unique=True)
    state = models.CharField(max_length=20, choices=IncidentState)
    audience = models.CharField(max_length=10, choices=Audience)
    body = models.TextField()

    class Meta:
        ordering = ["audience", "state", "name"]

    def __str__(self) -> str:
        return self.name


class StatusUpdate(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft (awaiting review)"
        APPROVED = "approved", "Reviewed and approved"
        REJECTED = "rejected", "Sent back by reviewer"
        PUBLISHED = "published", "Published"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="updates")
    audience = models.CharField(max_length=10, choices=Audience)
    incident_state = models.CharField(max_length=20, choices=IncidentState)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status, default=Status.DRAFT)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    review_notes = models.TextField(blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    publisher = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)
    override_reason = models.TextField(blank=True)  # non-empty: published without review
    next_update_at = models.DateTimeField(null=True, blank=True)
    # Cadence bookkeeping; each stage fires once per update (claimed by conditional UPDATE).
    on_time = models.BooleanField(null=True)
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.incident.reference} update {self.pk} ({self.audience}, {self.status})"

    @property
    def outbox_source(self) -> str:
        return f"comms.statusupdate:{self.pk}"

    @property
    def next_update_unstated(self) -> bool:
        """It promises a next update and its text does not say when. The default
        templates say it ({{ next_update_at }}); e-mail, chat and the status page add
        "Next update by ..." only when the text does not, so it is never said twice."""
        if self.next_update_at is None:
            return False
        return f"{self.next_update_at.astimezone(UTC):%H:%M} UTC" not in self.body

    @property
    def state_heading(self) -> str:
        """The state's label printed before the text ("Resolved — All clear."), or "" when
        the author already began with it ("Resolved: all clear."): said once, not twice."""
        label = IncidentState(self.incident_state).label
        return "" if re.match(rf"\s*{label}\b", self.body, re.IGNORECASE) else label

    # --- The review/publish state machine: the one home of these rules -------------------
    # draft -> approved | rejected (a second person reviews; rejected may be reviewed again)
    # any but published -> published (external: only once approved, or with the override)
    # The services enforce these answers; the incident room displays them.

    @property
    def reviewable(self) -> bool:
        return self.status in (self.Status.DRAFT, self.Status.REJECTED)

    def review_problem(self, *, reviewer) -> str | None:
        """Why `reviewer` cannot review this update now, or None."""
        if not self.reviewable:
            return f"This update is {self.get_status_display().lower()}."
        if self.author_id == reviewer.pk:
            return "The author cannot review their own update; ask a second person."
        return None

    @property
    def needs_review_to_publish(self) -> bool:
        """External updates go out only after an approving review (or the override)."""
        return self.audience == Audience.EXTERNAL and self.status not in (
            self.Status.APPROVED,
            self.Status.PUBLISHED,
        )

    @property
    def publishable(self) -> bool:
        """Publish is allowed as it stands, without the emergency override."""
        return self.status != self.Status.PUBLISHED and not self.needs_review_to_publish

    def publish_problem(self, *, override: bool) -> str | None:
        """Why this update cannot be published now, or None (a reason for the override
        is checked by the service)."""
        if self.status == self.Status.PUBLISHED:
            return "This update is already published."
        if self.needs_review_to_publish and not override:
            return (
                "External updates need an approving review by a second person before "
                "they are published (or the audited emergency override)."
            )
        return None


def _token() -> str:
    return secrets.token_urlsafe(24)


class SubscriberQuerySet(models.QuerySet):
    def active(self) -> SubscriberQuerySet:
        """Confirmed and not unsubscribed: the one definition of who gets updates."""
        return self.filter(confirmed_at__isnull=False, unsubscribed_at__isnull=True)


class Subscriber(models.Model):
    email = models.EmailField()
    # Empty means "every service".
    services = models.ManyToManyField("breakglass.CriticalService", blank=True, related_name="+")
    drill = models.BooleanField(default=False, help_text="Receives drill incidents only.")
    token = models.CharField(max_length=64, unique=True, default=_token)
    created_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    # A change asked for anonymously waits here until the link mailed to the address is
    # followed: service ids ([] = every service), and the token of that link.
    pending_services = models.JSONField(null=True, blank=True)
    change_token = models.CharField(max_length=64, blank=True, db_index=True)
    change_requested_at = models.DateTimeField(null=True, blank=True)

    objects = SubscriberQuerySet.as_manager()

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(fields=["email", "drill"], name="comms_subscriber_once")
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def active(self) -> bool:
        # Same rule as SubscriberQuerySet.active, for one row already in memory.
        return self.confirmed_at is not None and self.unsubscribed_at is None

    @property
    def status(self) -> str:
        if self.unsubscribed_at is not None:
            return "unsubscribed"
        return "active" if self.active else "pending"


class Webhook(models.Model):
    class Format(models.TextChoices):
        SLACK = "slack", "Slack-compatible"
        JSON = "json", "Generic JSON (HMAC-SHA256 signed)"

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    format = models.CharField(max_length=10, choices=Format, default=Format.JSON)
    secret = models.CharField(max_length=64, default=_token)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    drill = models.BooleanField(default=False, help_text="Receives drill incidents only.")
    active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_reason = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ComponentStatus(models.Model):
    """A service's status on the public page as last recorded, and when it changed: the
    Statuspage `components[].updated_at`. Written only by
    `comms.statuspage.component_changes_record`, and only when the status differs."""

    service = models.OneToOneField(
        "breakglass.CriticalService",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="public_status",
    )
    status = models.CharField(max_length=30)  # an Impact value or "under_maintenance"
    changed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.service_id} {self.status} since {self.changed_at:%Y-%m-%d %H:%M}"


class Maintenance(models.Model):
    class Status(models.TextChoices):
        # Statuspage values.
        SCHEDULED = "scheduled"
        IN_PROGRESS = "in_progress"
        VERIFYING = "verifying"
        COMPLETED = "completed"

    name = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status, default=Status.SCHEDULED)
    scheduled_for = models.DateTimeField()
    scheduled_until = models.DateTimeField()
    services = models.ManyToManyField("breakglass.CriticalService", blank=True, related_name="+")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scheduled_for"]

    def __str__(self) -> str:
        return self.name


class InboundAlert(models.Model):
    """An alert from Alertmanager or PagerDuty, and the incident it opened.

    One row per alert key (Alertmanager's groupKey, PagerDuty's incident id): the row is
    the idempotency guard, inserted before anything else happens, so a retried or duplicated
    delivery finds it and changes nothing twice.
    """

    class Source(models.TextChoices):
        ALERTMANAGER = "alertmanager", "Prometheus Alertmanager"
        PAGERDUTY = "pagerduty", "PagerDuty"

    class Status(models.TextChoices):
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved at the source"

    source = models.CharField(max_length=20, choices=Source)
    key = models.CharField(max_length=500)
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    status = models.CharField(max_length=10, choices=Status, default=Status.FIRING)
    title = models.CharField(max_length=200)
    link = models.URLField(max_length=500, blank=True)
    deliveries = models.PositiveIntegerField(default=1)
    first_received_at = models.DateTimeField()
    last_received_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_received_at"]
        constraints = [
            models.UniqueConstraint(fields=["source", "key"], name="comms_inbound_alert_once")
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.title} ({self.status})"
