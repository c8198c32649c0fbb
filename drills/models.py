"""Drills: definitions, runs and their steps, human participants, game days, the kill
switch and blackout windows.

A `Drill` is a definition (what to exercise, how, when, and what "pass" means). Its cron
schedule lives in django-celery-beat's `PeriodicTask`, so operators see and edit it in the
admin like every other schedule. Each execution against one backup path is a `DrillRun`
made of ordered `DrillStep`s, each with its own start, end, outcome and evidence.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from breakglass.access.models import BackupPath

STEP_NAMES = [
    "dependency",
    "issue",
    "verify",
    "ssh_probe",
    "freshness",
    "approvers",
    "notify",
    "reseal",
    "ssh_reseal",
]
STEP_TITLES = {
    "dependency": "Path does not depend on what it protects",
    "issue": "Drill credential issued through the real grant code",
    "verify": "Credential verified offline against the published bundle",
    "ssh_probe": "The real sshd accepts the drill certificate",
    "freshness": "Bundle and keys are fresh",
    "approvers": "Approver pool is real",
    "notify": "Notify-on-use delivered to the drill sink",
    "reseal": "Drill credential revoked and listed in the next bundle",
    "ssh_reseal": "The real sshd refuses the certificate once revoked",
}
# Steps that exist only for an SSH path naming a probe host (BackupPath.probe_ssh_host).
SSH_PROBE_STEPS = ("ssh_probe", "ssh_reseal")


def step_names_for(path: BackupPath) -> list[str]:
    """The steps a run on `path` has, in order: the probe steps only where a probe exists."""
    probed = path.method == BackupPath.Method.SSH_CERTIFICATE and bool(path.probe_ssh_host)
    return [name for name in STEP_NAMES if name not in SSH_PROBE_STEPS or probed]


class Drill(models.Model):
    class Kind(models.TextChoices):
        AUTOMATED = "automated", "Automated"
        HUMAN = "human", "Human"
        GAME_DAY = "game-day", "Game day"

    class Selection(models.TextChoices):
        PATHS = "paths", "The paths listed"
        TIER1 = "tier-1", "Every path of tier-1 services"
        ALL = "all", "Every active path"

    name = models.CharField(max_length=150, unique=True)
    slug = models.SlugField(unique=True)
    kind = models.CharField(max_length=10, choices=Kind, default=Kind.AUTOMATED)
    selection = models.CharField(max_length=10, choices=Selection, default=Selection.PATHS)
    paths = models.ManyToManyField(BackupPath, blank=True, related_name="drills")
    # The cron lives here, editable in the admin (Periodic tasks); deleting it unschedules.
    schedule = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="drill",
    )
    target_seconds = models.PositiveIntegerField(
        default=300, help_text="Pass criterion: time from drill start to a verified credential."
    )
    required_steps = models.JSONField(
        default=list, blank=True, help_text="Steps that must pass; empty means all of them."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_drills"
    )
    requires_signoff = models.BooleanField(
        default=False, help_text="The owner must sign off before scheduled runs start."
    )
    signed_off_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    signed_off_at = models.DateTimeField(null=True, blank=True)
    announce_minutes = models.PositiveIntegerField(
        default=0, help_text="Tell participants and path owners this long before it runs."
    )
    participants = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="named_in_drills"
    )
    participant_count = models.PositiveSmallIntegerField(
        default=0, help_text="Human drills: pick this many eligible responders automatically."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def steps_required(self) -> list[str]:
        return [s for s in STEP_NAMES if s in self.required_steps] or list(STEP_NAMES)


class GameDay(models.Model):
    """Many participants across many paths at once, with bounded concurrency."""

    name = models.CharField(max_length=150)
    drill = models.ForeignKey(Drill, on_delete=models.SET_NULL, null=True, blank=True)
    concurrency = models.PositiveIntegerField(default=8)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class DrillRun(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        PASSED = "passed"
        FAILED = "failed"
        ABORTED = "aborted"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        MANUAL = "manual"
        COMMAND = "command"
        GAME_DAY = "game-day"

    FINISHED = (State.PASSED, State.FAILED, State.ABORTED)

    drill = models.ForeignKey(
        Drill, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    path = models.ForeignKey(BackupPath, on_delete=models.PROTECT, related_name="drill_runs")
    kind = models.CharField(max_length=10, choices=Drill.Kind, default=Drill.Kind.AUTOMATED)
    trigger = models.CharField(max_length=10, choices=Trigger, default=Trigger.MANUAL)
    state = models.CharField(max_length=10, choices=State, default=State.PENDING, db_index=True)
    game_day = models.ForeignKey(
        GameDay, on_delete=models.CASCADE, null=True, blank=True, related_name="runs"
    )
    # Game-day runs are attributed to one participant each; the grant names them.
    participant = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    target_seconds = models.PositiveIntegerField(default=300)
    required_steps = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    scheduled_for = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, db_index=True)
    time_to_access_ms = models.PositiveIntegerField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)
    # Crash recovery: the worker holding the run renews `lease_expires_at` at every step;
    # a run still "running" after its lease is taken over (see services.drill_run_claim).
    attempt = models.PositiveSmallIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    current_step = models.CharField(max_length=20, blank=True)
    recovery_notes = models.TextField(blank=True)
    grant_id = models.BigIntegerField(null=True, blank=True)
    grant_jti = models.CharField(max_length=64, blank=True)
    facilitator_notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["path", "state", "finished_at"]),
            models.Index(fields=["game_day", "state"]),
        ]

    def __str__(self) -> str:
        return f"drill run {self.pk} of {self.path} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state in self.FINISHED

    @property
    def drill_ref(self) -> str:
        """What this run's drill grants carry in Grant.drill_ref (and their sink messages)."""
        return f"drill-run:{self.pk}"


class DrillStep(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        PASSED = "passed"
        FAILED = "failed"
        SKIPPED = "skipped"

    run = models.ForeignKey(DrillRun, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=20)
    order = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=10, choices=State, default=State.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Set when a facilitator marked this step by hand.",
    )

    class Meta:
        ordering = ["run", "order"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="drill_step_once")]

    def __str__(self) -> str:
        return f"{self.name} ({self.state})"

    @property
    def title(self) -> str:
        return STEP_TITLES.get(self.name, self.name)

    @property
    def duration_ms(self) -> int | None:
        if self.started_at and self.finished_at:
            return int((self.finished_at - self.started_at).total_seconds() * 1000)
        return None


class DrillParticipant(models.Model):
    """A person in a human drill or game day, and how far they got."""

    class State(models.TextChoices):
        INVITED = "invited"
        STARTED = "started"
        VERIFIED = "verified", "Credential verified"
        FAILED = "failed"
        NO_SHOW = "no-show", "No-show"

    run = models.ForeignKey(DrillRun, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="drill_participations"
    )
    state = models.CharField(max_length=10, choices=State, default=State.INVITED)
    outside_owning_team = models.BooleanField(default=False)
    invited_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    time_to_access_ms = models.PositiveIntegerField(null=True, blank=True)
    grant_id = models.BigIntegerField(null=True, blank=True)
    grant_jti = models.CharField(max_length=64, blank=True)
    failure_reason = models.TextField(blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["run", "user"], name="drill_participant_once")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.run_id} ({self.state})"


class KillSwitchEvent(models.Model):
    """Append-only: the latest row is the manual kill switch's state, the rest its history."""

    engaged = models.BooleanField()
    reason = models.TextField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{'engaged' if self.engaged else 'released'}: {self.reason}"


class BlackoutWindow(models.Model):
    """No new drill starts between `starts_at` and `ends_at` (a release freeze, a holiday)."""

    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )

    class Meta:
        ordering = ["starts_at"]

    def __str__(self) -> str:
        return f"{self.reason} ({self.starts_at:%Y-%m-%d %H:%M} to {self.ends_at:%Y-%m-%d %H:%M})"


class DrillSinkDelivery(models.Model):
    """A drill grant's notify-on-use message arrived at the drill sink."""

    message_id = models.BigIntegerField(unique=True)
    source = models.CharField(max_length=100, db_index=True)
    payload = models.JSONField(default=dict)
    delivered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-delivered_at"]

    def __str__(self) -> str:
        return f"{self.source} at {self.delivered_at:%Y-%m-%d %H:%M:%S}"


class KitDrill(models.Model):
    """A reconstruction drill of a sealed kit (a game-day step): k custodians rebuilt the
    kit key on one machine, `breakglass kit rebuild` proved it matches, nothing was minted.
    `proof` is that command's line, signed by the rebuilt key (checked on record)."""

    kit = models.ForeignKey("keys.Kit", on_delete=models.PROTECT, related_name="drills")
    game_day = models.ForeignKey(
        GameDay, on_delete=models.SET_NULL, null=True, blank=True, related_name="kit_drills"
    )
    custodians = models.JSONField(default=list)
    seconds = models.PositiveIntegerField()
    rebuilt_at = models.DateTimeField()
    recorded_at = models.DateTimeField(default=timezone.now)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    proof = models.TextField()

    class Meta:
        ordering = ["-rebuilt_at"]
        constraints = [
            models.UniqueConstraint(fields=["kit", "game_day"], name="kit_drill_once_per_game_day")
        ]

    def __str__(self) -> str:
        return f"reconstruction of {self.kit_id} at {self.rebuilt_at:%Y-%m-%d}"
