"""The registry: teams, critical services, and the backup paths into them.

Grants and their approvals live beside these (added by the grants work). Keys, tokens,
SSH certificate authorities and trust bundles live in `breakglass.keys`.
"""

import hashlib

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from breakglass.core.ssh import (
    DEFAULT_EXTENSIONS,
    InvalidSshPolicy,
    ssh_force_command_check,
    ssh_principals_check,
    ssh_source_addresses_check,
)


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


def ssh_principal_default(slug: str) -> str:
    """The principal a path's certificates carry when none is configured: specific to the
    path, so hosts map it to a local account with AuthorizedPrincipalsFile deliberately."""
    return f"bg-{slug}"


# The rules live in breakglass/core/ssh.py, shared with the sealed kit's SSH policy; these
# wrappers give the model, the admin and the policy-change form their ValidationError.
def validate_ssh_principals(value) -> None:
    _as_validation_error(ssh_principals_check, value)


def validate_ssh_source_addresses(value) -> None:
    _as_validation_error(ssh_source_addresses_check, value)


def validate_ssh_force_command(value: str) -> None:
    _as_validation_error(ssh_force_command_check, value)


def _as_validation_error(check, value) -> None:
    try:
        check(value)
    except InvalidSshPolicy as exc:
        raise ValidationError(str(exc)) from None


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
        default=list,
        blank=True,
        validators=[validate_ssh_principals],
        help_text="Principals for SSH certificates; empty = bg-<path slug>.",
    )
    ssh_login = models.CharField(
        max_length=32,
        default="breakglass",
        validators=[
            RegexValidator(r"^[a-z_][a-z0-9_-]{0,31}$", "A local account name, e.g. breakglass.")
        ],
        help_text="The local account on the hosts that the path's principal maps to "
        "(AuthorizedPrincipalsFile): the login responders use.",
    )
    ssh_host = models.CharField(
        max_length=255,
        blank=True,
        help_text="The host responders connect to (shown in the ssh command), e.g. bastion.example.org.",
    )
    ssh_source_addresses = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_ssh_source_addresses],
        help_text='Optional source-address critical option: CIDR blocks, e.g. ["10.0.0.0/8"].',
    )
    ssh_force_command = models.CharField(
        max_length=1000,
        blank=True,
        validators=[validate_ssh_force_command],
        help_text="Optional force-command critical option: the only command the certificate runs.",
    )
    ssh_ca = models.ForeignKey(
        "keys.SigningKey",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="backup_paths",
        limit_choices_to={"purpose": "ssh-ca"},
        help_text="The SSH certificate authority that signs this path's certificates (its own).",
    )
    probe_url = models.URLField(
        max_length=500,
        blank=True,
        help_text=(
            "Drill probe (token paths): an http(s) URL behind this service's verifier that "
            "accepts drill tokens (breakglass serve --allow-drill). Drills present their "
            "token there, expect acceptance, then refusal after the re-seal, and report the "
            "revocation propagation time. Empty: no probe."
        ),
    )
    # Optional drill probe: the automated drill logs in here with its drill certificate,
    # expects to get in, revokes it, and expects to be refused once the host has synced.
    probe_ssh_host = models.CharField(max_length=255, blank=True)
    probe_ssh_port = models.PositiveIntegerField(
        default=22, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    probe_ssh_login = models.CharField(max_length=64, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["service__tier", "service__name", "name"]
        constraints = [
            # One CA per SSH path: hosts that trust one path's CA must not accept the
            # certificates of another path (with other approvers and another team).
            models.UniqueConstraint(
                fields=["ssh_ca"],
                condition=models.Q(ssh_ca__isnull=False),
                name="backup_path_own_ssh_ca",
                violation_error_message="Another path already uses this SSH CA: "
                "each SSH path needs its own CA.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.service.slug}/{self.slug}"

    def clean(self):
        super().clean()
        if self.probe_ssh_host and not self.probe_ssh_login:
            raise ValidationError({"probe_ssh_login": "A probe host needs the login to use."})
        if self.probe_ssh_host and self.method != self.Method.SSH_CERTIFICATE:
            raise ValidationError({"probe_ssh_host": "Only SSH paths have an SSH probe."})

    @property
    def ssh_principals_effective(self) -> list[str]:
        return list(self.ssh_principals) or [ssh_principal_default(self.slug)]

    @property
    def ssh_certificate_policy(self) -> dict:
        """What every certificate of this path carries, whoever signs it: the server for a
        grant (credentials.py) or a sealed kit covering the path, whose certified copy must
        stay equal to it (`keys.selectors.kit_ssh_policy_problems`)."""
        return {
            "principals": self.ssh_principals_effective,
            "source_addresses": list(self.ssh_source_addresses),
            "force_command": self.ssh_force_command,
            "extensions": list(DEFAULT_EXTENSIONS),
        }


class Grant(models.Model):
    """One request for emergency access on a path, and the credential issued for it.

    A grant moves pending -> issued -> expired, or pending -> expired (nobody approved in
    time), and an issued or pending grant can be revoked. The credential itself is kept
    only encrypted, so the requester can pick up a token issued while they were away.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Waiting for approval"
        ISSUED = "issued", "Issued"
        EXPIRED = "expired", "Expired"
        REVOKED = "revoked", "Revoked"

    path = models.ForeignKey(BackupPath, on_delete=models.PROTECT, related_name="grants")
    # Empty only for drill grants run by the system without a named participant.
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="grants",
    )
    reason = models.TextField()
    incident_ref = models.CharField(max_length=100, blank=True)
    scopes = models.JSONField(default=list)
    lifetime_minutes = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=State, default=State.PENDING, db_index=True)
    emergency = models.BooleanField(default=False)
    drill = models.BooleanField(default=False)
    drill_ref = models.CharField(max_length=100, blank=True)
    # Minted offline with the sealed kit and recorded afterwards by kit_import.
    kit = models.ForeignKey(
        "keys.Kit", on_delete=models.PROTECT, null=True, blank=True, related_name="grants"
    )
    jti = models.CharField(max_length=64, unique=True)
    ssh_public_key = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    request_expires_at = models.DateTimeField()
    issued_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # AES-256-GCM under the KEK, bound to the jti (see grant_issue_credential).
    credential_encrypted = models.BinaryField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    revoke_reason = models.TextField(blank=True)
    review_required = models.BooleanField(default=False)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    review_notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["path", "requester", "emergency", "review_required"]),
            models.Index(fields=["state", "expires_at"]),
        ]
        constraints = [
            # One drill credential per participant per run (the run's drill_ref): the
            # service refuses a second one, and the database refuses a racing one.
            models.UniqueConstraint(
                fields=["drill_ref", "requester"],
                condition=models.Q(drill=True, requester__isnull=False),
                name="drill_credential_once_per_participant",
            )
        ]

    def __str__(self) -> str:
        return f"grant {self.pk} on {self.path.slug} ({self.state})"

    def __repr__(self) -> str:
        # Never the credential: reprs end up in logs.
        return f"<Grant {self.pk} {self.path_id} {self.state}>"

    @property
    def review_open(self) -> bool:
        return self.review_required and self.reviewed_at is None

    @property
    def is_ssh(self) -> bool:
        return self.path.method == BackupPath.Method.SSH_CERTIFICATE


class Approval(models.Model):
    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="grant_approvals"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # The database, not only the service, refuses one person approving twice.
            models.UniqueConstraint(fields=["grant", "approver"], name="approval_once_per_person")
        ]

    def __str__(self) -> str:
        return f"{self.approver} approved grant {self.grant_id}"


class ApiToken(models.Model):
    """A token for the JSON API. Only its SHA-256 is stored; the token is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # The first characters, so people can tell their tokens apart in the console.
    prefix = models.CharField(max_length=12)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Every token expires (BREAKGLASS_API_TOKEN_DAYS by default); see api_tokens.py.
    expires_at = models.DateTimeField()
    # What the token may do: a subset of api_tokens.API_TOKEN_SCOPES.
    scopes = models.JSONField(default=list)
    # Created right after an OTP (sudo): required for the credential scope.
    created_with_fresh_otp = models.BooleanField(default=False)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}...)"

    @property
    def expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @staticmethod
    def hash_of(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()


class PolicyChange(models.Model):
    """A change to the policy that guards a backup path, proposed by one administrator.

    Strengthening changes apply at once. A change that weakens the path (fewer approvals,
    self-issue on, another responder or approver group, another CA, a longer lifetime,
    new scopes or principals, re-activation) waits here until a second administrator
    approves it with a fresh OTP (two-person rule, NIST SP 800-53 AC-3(2)). `before` is
    the policy the proposer saw: if the path changed since, the proposal is stale and is
    refused rather than applied over someone else's change.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Waiting for a second administrator"
        APPLIED = "applied", "Applied"
        REJECTED = "rejected", "Rejected"
        STALE = "stale", "Stale (the path changed since)"

    path = models.ForeignKey(BackupPath, on_delete=models.PROTECT, related_name="policy_changes")
    before = models.JSONField()
    after = models.JSONField()
    weakens = models.JSONField(default=list)
    reason = models.TextField()
    state = models.CharField(max_length=10, choices=State, default=State.PENDING, db_index=True)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    proposed_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-proposed_at", "-id"]

    def __str__(self) -> str:
        return f"policy change {self.pk} on {self.path.slug} ({self.state})"

    @property
    def changed_fields(self) -> list[str]:
        return [name for name in self.after if self.after[name] != self.before.get(name)]
