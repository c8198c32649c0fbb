"""Signing keys, the revocation list and the published trust bundles.

Private keys are stored only as AES-256-GCM ciphertext under the key-encryption key
(`breakglass.keys.crypto`); nothing here ever renders or exports them.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from breakglass.core.keys import public_from_x
from breakglass.core.ssh import ssh_public_line


class SigningKey(models.Model):
    class Purpose(models.TextChoices):
        ISSUER = "issuer", "Token issuer"
        ROOT = "root", "Trust-bundle root"
        SSH_CA = "ssh-ca", "SSH certificate authority"

    class State(models.TextChoices):
        # active: signs new material. retiring: no longer signs, still verifies until
        # not_after. retired: gone from the bundle. revoked: listed in revoked_kids.
        ACTIVE = "active", "Active"
        RETIRING = "retiring", "Retiring"
        RETIRED = "retired", "Retired"
        REVOKED = "revoked", "Revoked"

    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    kid = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=120, blank=True)
    # Raw 32-byte Ed25519 public key, unpadded base64url (the JWK `x`).
    public_key = models.CharField(max_length=64)
    # AES-256-GCM envelope of the raw private key; the associated data binds it to the kid.
    private_key_encrypted = models.BinaryField(editable=False)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["purpose", "-not_before"]
        indexes = [models.Index(fields=["purpose", "state"])]

    def __str__(self) -> str:
        label = self.name or self.kid[:12]
        return f"{self.get_purpose_display()} {label} ({self.state})"

    def __repr__(self) -> str:
        # Never include the encrypted blob: reprs end up in logs and error pages.
        return f"<SigningKey {self.purpose} {self.kid} {self.state}>"

    def ssh_public_line(self) -> str:
        """The CA's `ssh-ed25519 AAAA...` line, for sshd's TrustedUserCAKeys."""
        return ssh_public_line(
            public_from_x(self.public_key), "breakglass-" + "-".join(self.name.split())
        )


class RevokedCredential(models.Model):
    jti = models.CharField(max_length=128, unique=True)
    # The credential's own expiry: after it, the revocation drops out of the bundle.
    expires_at = models.DateTimeField(db_index=True)
    reason = models.CharField(max_length=500, blank=True)
    revoked_at = models.DateTimeField(default=timezone.now)
    # SSH certificates: the CA and serial the path's KRL revokes (sshd never sees the jti).
    ssh_ca = models.ForeignKey(
        SigningKey, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    ssh_serial = models.PositiveBigIntegerField(null=True, blank=True)
    # The version of the first bundle that lists it; NULL until one does. A revocation
    # commits first and is published right after (keys.services.revocations_publish), so
    # this says which revocations still wait for a bundle (none, normally, a moment later).
    bundle_version = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-revoked_at"]
        indexes = [
            models.Index(
                fields=["expires_at"],
                condition=models.Q(bundle_version__isnull=True),
                name="keys_revoked_unpublished",
            )
        ]

    def __str__(self) -> str:
        return f"revoked {self.jti}"


class TrustBundle(models.Model):
    version = models.PositiveBigIntegerField(unique=True)
    document = models.JSONField()
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    # Offline mode: the payload was signed by root holders outside the server.
    imported = models.BooleanField(default=False)

    class Meta:
        ordering = ["-version"]
        get_latest_by = "version"

    def __str__(self) -> str:
        return f"trust bundle v{self.version}"


class Issuer(models.Model):
    """The deployment's issuer (`iss` of every token, `issuer` of every bundle): one row,
    written when keys are first made and changed only by `set_issuer`.

    Stored rather than read from each process's environment: the web server, workers,
    beat and a management command typed in another shell must all sign with the same
    issuer, or whichever re-signs the bundle last breaks every valid token.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    url = models.CharField(max_length=2048)
    set_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="issuer_single_row")]

    def __str__(self) -> str:
        return self.url


class Kit(models.Model):
    """The sealed offline kit's public part (docs/operations.md, "The kit").

    The private key exists only as custodians' SLIP-39 shares; the server keeps the
    root-certified kit document (`breakglass.core.kit`), which every bundle carries.
    """

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        # Its key id is listed in the bundle's revoked_kids: verifiers refuse its tokens.
        RETIRED = "retired", "Retired"

    kit_id = models.SlugField(max_length=100, unique=True)
    kid = models.CharField(max_length=64, unique=True)
    public_key = models.CharField(max_length=64)
    # The signed certificate: {"payload": {...}, "signatures": [...]}.
    document = models.JSONField()
    audiences = models.JSONField(default=list)
    scopes = models.JSONField(default=list)
    max_lifetime_minutes = models.PositiveIntegerField()
    threshold = models.PositiveSmallIntegerField()
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)
    # Set when a journal shows the kit was used: its shares were typed on a laptop, so
    # make a new kit (new shares) and retire this one.
    rekey_needed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "kit_id"]

    def __str__(self) -> str:
        return f"kit {self.kit_id} ({self.state})"

    @property
    def ssh_paths(self) -> list[str]:
        """The SSH paths the kit also mints certificates for (its certificate's `ssh`)."""
        return [entry["path"] for entry in self.document["payload"].get("ssh", [])]


class KitCustodian(models.Model):
    """One share holder. The share itself is never stored; `check_key_encrypted` lets
    the server verify a check code from `breakglass kit check` without ever seeing it."""

    kit = models.ForeignKey(Kit, on_delete=models.CASCADE, related_name="custodians")
    index = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=200)
    user = models.ForeignKey(
        "auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    check_key_encrypted = models.BinaryField(editable=False, blank=True, default=b"")
    last_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["kit", "index"]
        constraints = [models.UniqueConstraint(fields=["kit", "index"], name="kit_custodian_once")]

    def __str__(self) -> str:
        return f"{self.name} (share {self.index + 1} of {self.kit.kit_id})"

    def __repr__(self) -> str:
        return f"<KitCustodian {self.kit_id} #{self.index}>"
