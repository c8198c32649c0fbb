"""The registry: teams, critical services, and the backup paths into them.

Grants and their approvals live beside these (added by the grants work). Keys, tokens,
SSH certificate authorities and trust bundles live in `breakglass.keys`.
"""

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="teams")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CriticalService(models.Model):
    """Something whose outage is an incident, and whose repair may need emergency access."""

    name = models.CharField(max_length=100, unique=True)
    # Also the `aud` of tokens for this service: a verifier checks it equals its own slug.
    slug = models.SlugField(unique=True)
    tier = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(3)],
        help_text="1 = the business stops without it; 3 = inconvenient.",
    )
    owning_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="services")
    description = models.TextField(blank=True)
    runbook_url = models.URLField(blank=True)
    depends_on = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="dependents",
        help_text="Services this one needs in order to work.",
    )

    class Meta:
        ordering = ["tier", "name"]

    def __str__(self) -> str:
        return self.name


class BackupPath(models.Model):
    """The emergency way into one service, and the policy for using it."""

    class Method(models.TextChoices):
        SIGNED_TOKEN = "signed-token", "Signed token (verified offline by the service)"
        SSH_CERTIFICATE = "ssh-certificate", "SSH certificate (hosts trust the CA)"

    service = models.ForeignKey(
        CriticalService, on_delete=models.PROTECT, related_name="backup_paths"
    )
    name = models.CharField(max_length=100)
    slug = models.SlugField(unique=True)
    method = models.CharField(max_length=20, choices=Method, default=Method.SIGNED_TOKEN)
    description = models.TextField(blank=True)
    scopes = models.JSONField(
        default=list, help_text='Scopes this path can grant, e.g. ["read", "admin"].'
    )
    max_lifetime_minutes = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1), MaxValueValidator(24 * 60)]
    )
    approvals_required = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="k: distinct approvers (never the requester) needed to issue.",
    )
    approver_group = models.ForeignKey(
        Group, on_delete=models.PROTECT, related_name="approves_paths"
    )
    responder_group = models.ForeignKey(
        Group, on_delete=models.PROTECT, related_name="responds_on_paths"
    )
    allow_self_issue = models.BooleanField(
        default=False, help_text="Emergency self-issue: immediate, loud, reviewed afterwards."
    )
    request_ttl_minutes = models.PositiveIntegerField(
        default=30, help_text="A request not approved within this time expires."
    )
    requires = models.ManyToManyField(
        CriticalService,
        blank=True,
        related_name="required_by_paths",
        help_text="Services and tools this path itself needs to work (identity provider, VPN, chat...).",
    )
    ssh_principals = models.JSONField(
        default=list, blank=True, help_text="Principals for SSH certificates."
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["service__tier", "service__name", "name"]

    def __str__(self) -> str:
        return f"{self.service.slug}/{self.slug}"
