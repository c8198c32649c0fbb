"""Issuing what a grant unlocks: the signed token or SSH certificate, stored encrypted,
and the notify-on-use messages that go out with it; drill grants come through here too."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from breakglass.access.errors import GrantError
from breakglass.access.models import BackupPath, Grant
from breakglass.access.selectors import (
    drill_credential_held,
    path_approvers,
)
from breakglass.audit.services import audit_record
from breakglass.keys.crypto import secret_decrypt, secret_encrypt
from breakglass.keys.selectors import KeysNotReady
from breakglass.keys.services import ssh_certificate_issue, token_mint
from breakglass.outbox.services import email_enqueue_many, outbox_enqueue
from breakglass.project.transient import retry_transient


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# --- issuing ---------------------------------------------------------------------------


def _approver_names(grant: Grant) -> list[str]:
    return [
        approval.approver.get_username() for approval in grant.approvals.select_related("approver")
    ]


def _notify_on_use(
    *, grant: Grant, approvers: list[str] | None = None, sink_delivered_inline: bool = False
) -> None:
    """Tell the people who must know that a credential exists, through the outbox, so it
    reaches them even when Redis or the mail server is down right now. `approvers`: the
    grant's approvers' names when the caller has them already.

    `sink_delivered_inline`: an automated drill's notify step delivers the drill sink
    message itself, through the outbox code, moments later; the workers are kept off it
    for DRILLS_NOTIFY_HOLD_SECONDS so that the step never finds it in another's hands."""
    source = f"breakglass.grant:{grant.pk}"
    if grant.drill:
        hold = settings.DRILLS_NOTIFY_HOLD_SECONDS if sink_delivered_inline else 0
        outbox_enqueue(
            kind="drill_sink",
            deliver_after=timedelta(seconds=hold) if hold else None,
            idempotency_key=f"{source}:drill_sink",
            recipient=grant.drill_ref,
            source=source,
            payload={
                "grant": grant.pk,
                "drill_ref": grant.drill_ref,
                "path": grant.path.slug,
                "jti": grant.jti,
                "issued_at": _iso(grant.issued_at),
            },
        )
        if grant.requester_id is None:
            return  # an automated drill: the system holds it for seconds, then revokes it
        # A person holds a real credential issued without approval: the approvers hear of
        # it exactly as they would of an emergency self-issue, labelled as a drill.
    who = grant.requester.get_username() if grant.requester else "system"
    if grant.drill:
        kind = "DRILL credential (no approval)"
    elif grant.kit_id:
        # Minted offline from the sealed kit while Breakglass was down; imported now.
        kind = f"SEALED KIT {grant.kit.kit_id} used"
    elif grant.emergency:
        kind = "EMERGENCY self-issue"
    else:
        kind = "Access issued"
    if approvers is None:
        approvers = _approver_names(grant)
    subject = f"[Breakglass] {kind}: {who} on {grant.path.slug}"
    if grant.kit_id:
        who = f"{who} (via kit {grant.kit.kit_id})"
    body = "\n".join(
        [
            f"{who} now holds a credential on {grant.path.name} ({grant.path.slug}), "
            f"for the service {grant.path.service.name}.",
            "",
            *(
                [
                    f"This is a drill credential for {grant.drill_ref}; it is revoked when the run ends."
                ]
                if grant.drill
                else []
            ),
            f"Emergency self-issue: {'YES - post-use review required' if grant.emergency else 'no'}",
            f"Incident: {grant.incident_ref or 'NONE GIVEN'}",
            f"Reason: {grant.reason}",
            f"Scopes: {', '.join(grant.scopes) or '-'}",
            f"Approved by: {', '.join(approvers) or '-'}",
            f"Issued: {_iso(grant.issued_at)}",
            f"Expires: {_iso(grant.expires_at)}",
            f"Token id (jti): {grant.jti}",
            "",
            "If this is unexpected, revoke it now:",
            f"{settings.BREAKGLASS_BASE_URL}/access/grants/{grant.pk}/",
        ]
    )
    recipients: list[str] = []
    for email in [
        *(user.email for user in path_approvers(path=grant.path)),
        *settings.BREAKGLASS_SECURITY_CONTACTS,
    ]:
        if email and email not in recipients:
            recipients.append(email)
    email_enqueue_many(  # one INSERT for all of them
        [
            {
                "to": email,
                "key": f"{source}:issued:{email}",
                "source": source,
                "subject": subject,
                "body": body,
            }
            for email in recipients
        ]
    )


def ssh_key_id(*, grant: Grant, subject: str) -> str:
    """The certificate's key ID: sshd logs it at login, tying the session to the grant."""
    return f"breakglass grant {grant.pk} {subject} jti={grant.jti}"


def _credential_context(jti: str) -> str:
    return f"breakglass.grant:{jti}"


def grant_issue_credential(*, grant: Grant, sink_delivered_inline: bool = False) -> str:
    """Mint the token or sign the SSH certificate for a grant, store it encrypted, mark
    the grant issued and enqueue notify-on-use. Call inside the caller's transaction;
    real, emergency and drill grants all come through here."""
    now = timezone.now()
    expires_at = now + timedelta(minutes=grant.lifetime_minutes)
    path = grant.path
    if grant.requester is not None:
        subject = grant.requester.get_username()
    else:
        subject = f"drill:{grant.drill_ref}"
    # An emergency or drill grant is issued in the transaction that creates it: nobody
    # can have approved it, so there is nothing to read.
    approvers = [] if grant.emergency or grant.drill else _approver_names(grant)
    if path.method == BackupPath.Method.SSH_CERTIFICATE:
        if path.ssh_ca is None:
            raise GrantError(
                f"Path {path.slug} has no SSH certificate authority configured; ask an administrator.",
                code="no_ssh_ca",
                status=409,
            )
        try:
            credential = ssh_certificate_issue(
                ca=path.ssh_ca,
                public_key=grant.ssh_public_key,
                key_id=ssh_key_id(grant=grant, subject=subject),
                # Unique per CA: grant ids are unique and each path has its own CA. The
                # path's KRL revokes by this serial (breakglass/core/krl.py).
                serial=grant.pk,
                valid_after=now,
                valid_before=expires_at,
                **path.ssh_certificate_policy,
            )
        except ValueError as exc:  # InvalidSshPublicKey, or an inactive CA
            raise GrantError(
                f"The SSH certificate could not be issued: {exc}", code="issue_failed", status=503
            ) from exc
    else:
        try:
            credential = token_mint(
                subject=subject,
                audience=path.service.slug,
                scopes=list(grant.scopes),
                path=path.slug,
                incident=grant.incident_ref or None,
                approvers=approvers,
                drill=grant.drill,
                emergency=grant.emergency,
                not_before=now,
                expires_at=expires_at,
                jti=grant.jti,
            )
        except (ValueError, KeysNotReady) as exc:  # TokenRequestInvalid is a ValueError
            raise GrantError(
                f"The token could not be issued: {exc}", code="issue_failed", status=503
            ) from exc
    grant.credential_encrypted = secret_encrypt(
        credential.encode(), context=_credential_context(grant.jti)
    )
    grant.state = Grant.State.ISSUED
    grant.issued_at = now
    grant.expires_at = expires_at
    grant.save(update_fields=["credential_encrypted", "state", "issued_at", "expires_at"])
    audit_record(
        action="grant.issued",
        actor=grant.requester,
        obj=grant,
        data={
            "path": path.slug,
            "jti": grant.jti,
            "method": path.method,
            "scopes": list(grant.scopes),
            "emergency": grant.emergency,
            "drill": grant.drill,
            "approvers": approvers,
            "incident": grant.incident_ref,
            "expires_at": _iso(expires_at),
        },
    )
    _notify_on_use(grant=grant, approvers=approvers, sink_delivered_inline=sink_delivered_inline)
    return credential


def grant_credential_available(*, grant: Grant, user: User) -> bool:
    """Whether this grant holds an issued credential for this user (its grantee only)."""
    return (
        grant.state == Grant.State.ISSUED
        and grant.credential_encrypted is not None
        and grant.requester_id is not None
        and grant.requester_id == user.pk
    )


def grant_credential(*, grant: Grant, user: User) -> str | None:
    """The issued credential, for its grantee only (nobody else ever sees it)."""
    if not grant_credential_available(grant=grant, user=user):
        return None
    return secret_decrypt(
        bytes(grant.credential_encrypted), context=_credential_context(grant.jti)
    ).decode()


# --- the grant lifecycle -----------------------------------------------------------------


def _ephemeral_ssh_public_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


@retry_transient
def grant_issue_drill(
    *,
    path: BackupPath,
    drill_ref: str,
    participant: User | None = None,
    lifetime_minutes: int | None = None,
    ssh_public_key: str | None = None,
    sink_delivered_inline: bool = False,
) -> tuple[Grant, str]:
    """A short-lived drill grant, issued through exactly the same code as real grants.

    Drill grants skip approval (the drill coordinator scheduled them), so they are the
    side door the rules below keep narrow: at most DRILLS_CREDENTIAL_MINUTES long, one
    per participant per run (refused here, and by a database constraint for a racing
    second request), revoked with the rest of the run's credentials when the run ends
    (`drill_grants_revoke`), and, when a person holds one, the path's approvers and the
    security contacts are told as for a self-issue. The token carries `drill: true`.
    An SSH drill certifies `ssh_public_key` (the drill's probe keeps the private half in
    memory) or, without one, a throwaway key nobody holds. `sink_delivered_inline`: the
    caller delivers the drill sink message itself (an automated run's notify step).
    """
    ceiling = settings.DRILLS_CREDENTIAL_MINUTES
    lifetime = max(1, min(int(lifetime_minutes or ceiling), ceiling, path.max_lifetime_minutes))
    if participant is not None and drill_credential_held(drill_ref=drill_ref, user=participant):
        raise GrantError(
            "You already received this drill's credential: one per participant per run.",
            code="drill_credential_held",
            status=409,
        )
    with transaction.atomic():
        try:
            with transaction.atomic():
                grant = _drill_grant_create(
                    path=path,
                    drill_ref=drill_ref,
                    participant=participant,
                    lifetime=lifetime,
                    ssh_public_key=ssh_public_key,
                )
        except IntegrityError:  # a concurrent request by the same participant won
            raise GrantError(
                "You already received this drill's credential: one per participant per run.",
                code="drill_credential_held",
                status=409,
            ) from None
        audit_record(
            action="grant.drill_requested",
            actor=participant,
            obj=grant,
            data={"path": path.slug, "drill_ref": drill_ref, "lifetime_minutes": lifetime},
        )
        credential = grant_issue_credential(
            grant=grant, sink_delivered_inline=sink_delivered_inline
        )
    return grant, credential


def _drill_grant_create(
    *,
    path: BackupPath,
    drill_ref: str,
    participant: User | None,
    lifetime: int,
    ssh_public_key: str | None,
) -> Grant:
    now = timezone.now()
    return Grant.objects.create(
        path=path,
        requester=participant,
        reason=f"Drill {drill_ref}",
        scopes=list(path.scopes),
        lifetime_minutes=lifetime,
        drill=True,
        drill_ref=drill_ref,
        jti=secrets.token_hex(16),
        ssh_public_key=(
            (ssh_public_key or _ephemeral_ssh_public_key())
            if path.method == BackupPath.Method.SSH_CERTIFICATE
            else ""
        ),
        created_at=now,
        request_expires_at=now,
    )


# --- API tokens ------------------------------------------------------------------------
