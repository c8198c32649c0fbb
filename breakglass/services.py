"""The rules of emergency access: requesting, approving, breaking the glass, revoking,
reviewing and expiring grants, and the API tokens automation uses to do the same.

Every refusal raises `GrantError` with a message a person can act on. Refusals that
matter for security (self-approval, an ineligible requester, a blocked emergency issue)
are written to the audit log in their own committed transaction first, so the attempt
leaves a trace while the grant itself is left exactly as it was.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from breakglass.accounts import roles
from breakglass.audit.services import audit_record
from breakglass.models import ApiToken, Approval, BackupPath, Grant
from breakglass.outbox.services import outbox_enqueue
from breakglass.selectors import (
    grant_review_blocking,
    path_approvers,
    path_get,
    user_is_path_approver,
    user_is_path_responder,
)

API_TOKEN_PREFIX = "bgt_"


class GrantError(Exception):
    """A refused access operation. `str()` is the human message; `code` is for the API."""

    def __init__(self, message: str, *, code: str = "refused", status: int = 400):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


def _refuse(
    *,
    message: str,
    code: str,
    status: int = 400,
    action: str | None = None,
    actor: User | None = None,
    obj=None,
    data: dict | None = None,
):
    """Record the refusal (when it is worth auditing) in its own transaction, then raise."""
    if action is not None:
        with transaction.atomic():
            audit_record(
                action=action,
                actor=actor,
                obj=obj,
                data={"code": code, "message": message, **(data or {})},
            )
    raise GrantError(message, code=code, status=status)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def path_resolve(*, slug: str) -> BackupPath:
    """The active path with this slug, or a clear error (commands and the API take slugs)."""
    path = path_get(slug=(slug or "").strip())
    if path is None:
        raise GrantError(
            f"Unknown path {slug!r}. Run check_paths or see /access/ for the list.",
            code="unknown_path",
            status=404,
        )
    return path


# --- validation shared by requests and emergency self-issue -------------------------------


@dataclass(frozen=True)
class _CleanRequest:
    reason: str
    scopes: list[str]
    lifetime_minutes: int
    incident_ref: str
    ssh_public_key: str


def ssh_public_key_problem(key: str) -> str | None:
    """A human explanation of what is wrong with an SSH public key, or None if it is usable."""
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    key = (key or "").strip()
    if not key:
        return "This path issues SSH certificates: paste your SSH public key (the .pub file)."
    if "PRIVATE KEY" in key:
        return "That is a private key. Never paste it anywhere; paste the .pub file instead."
    try:
        load_ssh_public_key(key.encode())
    except (ValueError, TypeError) as exc:
        return f"That is not a valid SSH public key ({exc}). Paste one line such as 'ssh-ed25519 AAAA... you@host'."
    return None


def _check_request(
    *,
    path: BackupPath,
    requester: User,
    reason: str,
    scopes: list[str] | None,
    lifetime_minutes: int | None,
    incident_ref: str,
    ssh_public_key: str,
    refused_action: str,
) -> _CleanRequest:
    def refuse(message: str, code: str, audit: bool = True):
        _refuse(
            message=message,
            code=code,
            action=refused_action if audit else None,
            actor=requester,
            obj=path,
            data={"path": path.slug},
        )

    if not path.is_active:
        refuse(f"Path {path.slug} is not active.", "inactive_path")
    if not user_is_path_responder(user=requester, path=path):
        refuse(
            f"{requester.get_username()} is not an eligible responder on {path.slug} "
            f"(members of the group '{path.responder_group.name}' are).",
            "ineligible_requester",
        )
    reason = (reason or "").strip()
    if not reason:
        refuse("A reason is required: say what you need the access for.", "missing_reason")
    if scopes is None or scopes == []:
        scopes = list(path.scopes)
    scopes = sorted({str(scope).strip() for scope in scopes if str(scope).strip()})
    if not scopes:
        refuse(f"Path {path.slug} has no scopes configured; ask an administrator.", "no_scopes")
    outside = [scope for scope in scopes if scope not in path.scopes]
    if outside:
        refuse(
            f"Scope {', '.join(outside)} is outside this path; it can grant: "
            f"{', '.join(path.scopes) or 'no scopes'}.",
            "scope_outside_path",
        )
    if lifetime_minutes is None:
        lifetime_minutes = path.max_lifetime_minutes
    try:
        lifetime_minutes = int(lifetime_minutes)
    except (TypeError, ValueError):
        refuse("The lifetime must be a whole number of minutes.", "bad_lifetime", audit=False)
    if lifetime_minutes < 1:
        refuse("The lifetime must be at least one minute.", "bad_lifetime")
    if lifetime_minutes > path.max_lifetime_minutes:
        refuse(
            f"A lifetime of {lifetime_minutes} minutes is over this path's maximum of "
            f"{path.max_lifetime_minutes} minutes.",
            "lifetime_over_maximum",
        )
    incident_ref = (incident_ref or "").strip()
    if len(incident_ref) > 100:
        refuse(
            "The incident reference is too long (100 characters at most).",
            "bad_incident",
            audit=False,
        )
    ssh_public_key = (ssh_public_key or "").strip()
    if path.method == BackupPath.Method.SSH_CERTIFICATE:
        problem = ssh_public_key_problem(ssh_public_key)
        if problem:
            refuse(problem, "bad_ssh_public_key", audit=False)
    else:
        ssh_public_key = ""
    return _CleanRequest(reason, scopes, lifetime_minutes, incident_ref, ssh_public_key)


def _grant_create(
    *, path: BackupPath, requester: User, clean: _CleanRequest, now: datetime, **fields
) -> Grant:
    """A new grant row from a checked request, with a fresh unguessable token id."""
    return Grant.objects.create(
        path=path,
        requester=requester,
        reason=clean.reason,
        incident_ref=clean.incident_ref,
        scopes=clean.scopes,
        lifetime_minutes=clean.lifetime_minutes,
        jti=secrets.token_hex(16),
        ssh_public_key=clean.ssh_public_key,
        created_at=now,
        **fields,
    )


# --- issuing ---------------------------------------------------------------------------


def _notify_on_use(*, grant: Grant) -> None:
    """Tell the people who must know that a credential exists, through the outbox, so it
    reaches them even when Redis or the mail server is down right now."""
    source = f"breakglass.grant:{grant.pk}"
    if grant.drill:
        outbox_enqueue(
            kind="drill_sink",
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
        return
    who = grant.requester.get_username() if grant.requester else "system"
    kind = "EMERGENCY self-issue" if grant.emergency else "Access issued"
    approvers = [approval.approver.get_username() for approval in grant.approvals.all()]
    subject = f"[Breakglass] {kind}: {who} on {grant.path.slug}"
    body = "\n".join(
        [
            f"{who} now holds a credential on {grant.path.name} ({grant.path.slug}), "
            f"for the service {grant.path.service.name}.",
            "",
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
    for email in recipients:
        outbox_enqueue(
            kind="email",
            idempotency_key=f"{source}:issued:{email}",
            recipient=email,
            source=source,
            payload={"subject": subject, "body": body, "to": [email]},
        )


def _credential_context(jti: str) -> str:
    return f"breakglass.grant:{jti}"


def grant_issue_credential(*, grant: Grant) -> str:
    """Mint the token or sign the SSH certificate for a grant, store it encrypted, mark
    the grant issued and enqueue notify-on-use. Call inside the caller's transaction;
    real, emergency and drill grants all come through here."""
    from breakglass.keys.crypto import secret_encrypt

    now = timezone.now()
    expires_at = now + timedelta(minutes=grant.lifetime_minutes)
    path = grant.path
    if grant.requester is not None:
        subject = grant.requester.get_username()
    else:
        subject = f"drill:{grant.drill_ref}"
    approvers = [approval.approver.get_username() for approval in grant.approvals.all()]
    if path.method == BackupPath.Method.SSH_CERTIFICATE:
        from breakglass.keys.services import ssh_certificate_issue

        if path.ssh_ca is None:
            raise GrantError(
                f"Path {path.slug} has no SSH certificate authority configured; ask an administrator.",
                code="no_ssh_ca",
                status=409,
            )
        principals = list(path.ssh_principals) or [subject]
        try:
            credential = ssh_certificate_issue(
                ca=path.ssh_ca,
                public_key=grant.ssh_public_key,
                principals=principals,
                key_id=f"breakglass grant {grant.pk} {subject} jti={grant.jti}",
                serial=grant.pk,
                valid_after=now,
                valid_before=expires_at,
            )
        except ValueError as exc:  # InvalidSshPublicKey, or an inactive CA
            raise GrantError(
                f"The SSH certificate could not be issued: {exc}", code="issue_failed", status=503
            ) from exc
    else:
        from breakglass.keys.selectors import KeysNotReady
        from breakglass.keys.services import token_mint

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
    _notify_on_use(grant=grant)
    return credential


def grant_credential(*, grant: Grant, user: User) -> str | None:
    """The issued credential, for its grantee only (nobody else ever sees it)."""
    from breakglass.keys.crypto import secret_decrypt

    if grant.state != Grant.State.ISSUED or grant.credential_encrypted is None:
        return None
    if grant.requester_id is None or grant.requester_id != user.pk:
        return None
    return secret_decrypt(
        bytes(grant.credential_encrypted), context=_credential_context(grant.jti)
    ).decode()


# --- the grant lifecycle -----------------------------------------------------------------


def grant_request(
    *,
    path: BackupPath,
    requester: User,
    reason: str,
    scopes: list[str] | None = None,
    lifetime_minutes: int | None = None,
    incident_ref: str = "",
    ssh_public_key: str = "",
) -> Grant:
    """Ask for access on a path; it is issued when k distinct approvers have approved."""
    clean = _check_request(
        path=path,
        requester=requester,
        reason=reason,
        scopes=scopes,
        lifetime_minutes=lifetime_minutes,
        incident_ref=incident_ref,
        ssh_public_key=ssh_public_key,
        refused_action="grant.request_refused",
    )
    now = timezone.now()
    with transaction.atomic():
        grant = _grant_create(
            path=path,
            requester=requester,
            clean=clean,
            now=now,
            request_expires_at=now + timedelta(minutes=path.request_ttl_minutes),
        )
        audit_record(
            action="grant.requested",
            actor=requester,
            obj=grant,
            data={
                "path": path.slug,
                "scopes": clean.scopes,
                "lifetime_minutes": clean.lifetime_minutes,
                "incident": clean.incident_ref,
                "reason": clean.reason,
                "approvals_required": path.approvals_required,
            },
        )
        approvers = [u for u in path_approvers(path=path) if u.pk != requester.pk and u.email]
        for approver in approvers:
            outbox_enqueue(
                kind="email",
                idempotency_key=f"breakglass.grant:{grant.pk}:request:{approver.email}",
                recipient=approver.email,
                source=f"breakglass.grant:{grant.pk}",
                payload={
                    "subject": f"[Breakglass] Approval needed: {requester.get_username()} on {path.slug}",
                    "body": (
                        f"{requester.get_username()} asks for access on {path.name} ({path.slug}).\n"
                        f"Incident: {clean.incident_ref or 'NONE GIVEN'}\nReason: {clean.reason}\n"
                        f"Scopes: {', '.join(clean.scopes) or '-'}; lifetime {clean.lifetime_minutes} min.\n\n"
                        f"Review it: {settings.BREAKGLASS_BASE_URL}/access/grants/{grant.pk}/"
                    ),
                    "to": [approver.email],
                },
            )
    return grant


def grant_approve(*, grant: Grant, approver: User) -> Grant:
    """Add one approval. The k-th distinct approval issues the credential.

    The grant row is locked, so two approvers pressing the button at once produce two
    approvals and exactly one issued credential.
    """
    problem: tuple[str, str] | None = None
    with transaction.atomic():
        locked = (
            Grant.objects.select_for_update()
            .select_related("path", "path__service")
            .get(pk=grant.pk)
        )
        path = locked.path
        now = timezone.now()
        if locked.state == Grant.State.PENDING and locked.request_expires_at <= now:
            # Expire it here and now: this is the truthful state, whatever the sweep says.
            locked.state = Grant.State.EXPIRED
            locked.save(update_fields=["state"])
            audit_record(action="grant.request_expired", obj=locked, data={"path": path.slug})
        if locked.state == Grant.State.EXPIRED and locked.issued_at is None:
            problem = (
                "This request expired before it was approved; the responder must ask again.",
                "request_expired",
            )
        elif locked.state != Grant.State.PENDING:
            problem = (
                f"This request is no longer waiting for approval (it is {locked.state}).",
                "not_pending",
            )
        elif approver.pk == locked.requester_id:
            problem = ("You cannot approve your own request.", "self_approval")
        elif not user_is_path_approver(user=approver, path=path):
            problem = (
                f"You are not an approver for {path.slug} (members of '{path.approver_group.name}' are).",
                "not_an_approver",
            )
        elif locked.approvals.filter(approver=approver).exists():
            problem = (
                "You have already approved this request; another approver is needed.",
                "already_approved",
            )
        else:
            Approval.objects.create(grant=locked, approver=approver, created_at=now)
            count = locked.approvals.count()
            audit_record(
                action="grant.approved",
                actor=approver,
                obj=locked,
                data={"path": path.slug, "approvals": count, "required": path.approvals_required},
            )
            if count >= path.approvals_required:
                grant_issue_credential(grant=locked)
            return locked
    _refuse(
        message=problem[0],
        code=problem[1],
        status=409,
        action="grant.approval_refused",
        actor=approver,
        obj=grant,
        data={"path": grant.path.slug},
    )
    raise AssertionError("unreachable")  # pragma: no cover


def grant_self_issue(
    *,
    path: BackupPath,
    requester: User,
    reason: str,
    confirmation: str,
    scopes: list[str] | None = None,
    lifetime_minutes: int | None = None,
    incident_ref: str = "",
    ssh_public_key: str = "",
) -> tuple[Grant, str]:
    """Break the glass: issue at once, notify every approver and the security contacts,
    and require a post-use review. The caller has checked a fresh OTP (sudo)."""
    clean = _check_request(
        path=path,
        requester=requester,
        reason=reason,
        scopes=scopes,
        lifetime_minutes=lifetime_minutes,
        incident_ref=incident_ref,
        ssh_public_key=ssh_public_key,
        refused_action="grant.self_issue_refused",
    )

    def refuse(message: str, code: str):
        _refuse(
            message=message,
            code=code,
            status=409 if code == "review_pending" else 400,
            action="grant.self_issue_refused",
            actor=requester,
            obj=path,
            data={"path": path.slug},
        )

    if not path.allow_self_issue:
        refuse(
            f"{path.slug} does not allow emergency self-issue; request approval instead.",
            "self_issue_not_allowed",
        )
    if (confirmation or "").strip() != path.slug:
        refuse(
            f"To break the glass, type the path's name exactly: {path.slug}",
            "confirmation_mismatch",
        )
    blocked = False
    with transaction.atomic():
        # Lock the path so two simultaneous self-issues by one person cannot both pass
        # the "previous review closed" check.
        BackupPath.objects.select_for_update().filter(pk=path.pk).first()
        previous = grant_review_blocking(path=path, user=requester)
        if previous is not None:
            blocked = True
        else:
            now = timezone.now()
            grant = _grant_create(
                path=path,
                requester=requester,
                clean=clean,
                now=now,
                request_expires_at=now,
                emergency=True,
                review_required=True,
            )
            audit_record(
                action="grant.self_issued",
                actor=requester,
                obj=grant,
                data={
                    "path": path.slug,
                    "scopes": clean.scopes,
                    "lifetime_minutes": clean.lifetime_minutes,
                    "incident": clean.incident_ref,
                    "reason": clean.reason,
                },
            )
            credential = grant_issue_credential(grant=grant)
    if blocked:
        refuse(
            f"Your previous emergency grant #{previous.pk} on {path.slug} is waiting for its "
            "post-use review. An approver must close that review before you can break the "
            "glass on this path again; you can still request approval.",
            "review_pending",
        )
    return grant, credential


def _can_revoke(*, user: User | None, grant: Grant) -> bool:
    if user is None:  # the command line: whoever runs manage.py already owns the server
        return True
    return (
        grant.requester_id == user.pk
        or user_is_path_approver(user=user, path=grant.path)
        or roles.user_has_role(user, roles.INCIDENT_COMMANDER)
        or roles.user_has_role(user, roles.ADMINISTRATOR)
    )


def grant_revoke(*, grant: Grant, actor: User | None, reason: str) -> Grant:
    """End a grant early. An issued credential goes on the revocation list, so the next
    trust bundle names its jti; a pending request is simply withdrawn."""
    reason = (reason or "").strip()
    if not reason:
        _refuse(message="A reason is required to revoke a grant.", code="missing_reason")
    if not _can_revoke(user=actor, grant=grant):
        _refuse(
            message="Only the grantee, the path's approvers, an incident commander or an administrator can revoke this grant.",
            code="not_allowed",
            status=403,
            action="grant.revoke_refused",
            actor=actor,
            obj=grant,
        )
    with transaction.atomic():
        locked = Grant.objects.select_for_update().select_related("path").get(pk=grant.pk)
        if locked.state not in (Grant.State.ISSUED, Grant.State.PENDING):
            state = locked.state
        else:
            state = None
            was_issued = locked.state == Grant.State.ISSUED
            now = timezone.now()
            locked.state = Grant.State.REVOKED
            locked.revoked_at = now
            locked.revoked_by = actor
            locked.revoke_reason = reason
            locked.save(update_fields=["state", "revoked_at", "revoked_by", "revoke_reason"])
            audit_record(
                action="grant.revoked",
                actor=actor,
                actor_label=None if actor else "command line",
                obj=locked,
                data={
                    "path": locked.path.slug,
                    "jti": locked.jti,
                    "reason": reason,
                    "was_issued": was_issued,
                },
            )
            if was_issued:
                from breakglass.keys.services import credential_revoke

                credential_revoke(
                    jti=locked.jti, expires_at=locked.expires_at, reason=reason, actor=actor
                )
            return locked
    _refuse(
        message=f"This grant is already {state}; there is nothing to revoke.",
        code="not_revocable",
        status=409,
    )
    raise AssertionError("unreachable")  # pragma: no cover


def grant_review_close(*, grant: Grant, reviewer: User, notes: str) -> Grant:
    """Close the post-use review of an emergency grant (unblocks the grantee's next one)."""
    notes = (notes or "").strip()
    if not notes:
        _refuse(
            message="Write review notes: what was done with the access, and was it justified?",
            code="missing_notes",
        )
    if reviewer.pk == grant.requester_id:
        _refuse(
            message="You cannot review your own emergency access.",
            code="self_review",
            status=403,
            action="grant.review_refused",
            actor=reviewer,
            obj=grant,
        )
    if not (
        user_is_path_approver(user=reviewer, path=grant.path)
        or roles.user_has_role(reviewer, roles.ADMINISTRATOR)
    ):
        _refuse(
            message=f"Only approvers of {grant.path.slug} or an administrator can close this review.",
            code="not_allowed",
            status=403,
            action="grant.review_refused",
            actor=reviewer,
            obj=grant,
        )
    with transaction.atomic():
        locked = Grant.objects.select_for_update().select_related("path").get(pk=grant.pk)
        if locked.review_open:
            locked.reviewed_at = timezone.now()
            locked.reviewed_by = reviewer
            locked.review_notes = notes
            locked.save(update_fields=["reviewed_at", "reviewed_by", "review_notes"])
            audit_record(
                action="grant.review_closed",
                actor=reviewer,
                obj=locked,
                data={"path": locked.path.slug, "notes": notes},
            )
            return locked
    _refuse(message="This grant has no open review.", code="no_open_review", status=409)
    raise AssertionError("unreachable")  # pragma: no cover


def grants_expire(*, now: datetime | None = None) -> int:
    """Expire requests nobody approved in time and issued grants past their lifetime.

    Each row is claimed with a conditional UPDATE, so two sweeps running at once (or a
    sweep racing an approval) expire each grant once and audit it once.
    """
    now = now or timezone.now()
    expired = 0
    due = Grant.objects.filter(
        state=Grant.State.PENDING, request_expires_at__lte=now
    ) | Grant.objects.filter(state=Grant.State.ISSUED, expires_at__lte=now)
    for pk, state, path_slug in due.values_list("pk", "state", "path__slug"):
        with transaction.atomic():
            claimed = Grant.objects.filter(pk=pk, state=state).update(state=Grant.State.EXPIRED)
            if claimed:
                audit_record(
                    action="grant.request_expired"
                    if state == Grant.State.PENDING
                    else "grant.expired",
                    object_type="breakglass.grant",
                    object_id=pk,
                    data={"path": path_slug},
                )
                expired += 1
    return expired


def _ephemeral_ssh_public_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def grant_issue_drill(
    *,
    path: BackupPath,
    drill_ref: str,
    participant: User | None = None,
    lifetime_minutes: int = 5,
) -> tuple[Grant, str]:
    """A short-lived drill grant, issued through exactly the same code as real grants.

    Drill grants skip approval (the drill coordinator scheduled them) and notify the
    drill sink instead of people; the token carries `drill: true` so services can tell.
    """
    lifetime = max(1, min(int(lifetime_minutes), path.max_lifetime_minutes))
    with transaction.atomic():
        now = timezone.now()
        grant = Grant.objects.create(
            path=path,
            requester=participant,
            reason=f"Drill {drill_ref}",
            scopes=list(path.scopes),
            lifetime_minutes=lifetime,
            drill=True,
            drill_ref=drill_ref,
            jti=secrets.token_hex(16),
            ssh_public_key=(
                _ephemeral_ssh_public_key()
                if path.method == BackupPath.Method.SSH_CERTIFICATE
                else ""
            ),
            created_at=now,
            request_expires_at=now,
        )
        audit_record(
            action="grant.drill_requested",
            actor=participant,
            obj=grant,
            data={"path": path.slug, "drill_ref": drill_ref},
        )
        credential = grant_issue_credential(grant=grant)
    return grant, credential


# --- API tokens ------------------------------------------------------------------------


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """A new API token for `user`. The token is returned once and stored only hashed."""
    name = (name or "").strip()
    if not name:
        raise GrantError(
            "Give the token a name, such as the automation that will use it.", code="missing_name"
        )
    raw = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name[:100], prefix=raw[:12], token_hash=ApiToken.hash_of(raw)
        )
        audit_record(action="api_token.created", actor=user, obj=token, data={"name": token.name})
    return token, raw


def api_token_revoke(*, token: ApiToken, actor: User) -> None:
    if token.user_id != actor.pk and not roles.user_has_role(actor, roles.ADMINISTRATOR):
        raise GrantError("You can only revoke your own API tokens.", code="not_allowed", status=403)
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        audit_record(action="api_token.revoked", actor=actor, obj=token, data={"name": token.name})


def api_token_authenticate(*, raw: str) -> User | None:
    """The active user owning this API token, or None."""
    if not raw or not raw.startswith(API_TOKEN_PREFIX):
        return None
    digest = ApiToken.hash_of(raw)
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=digest, revoked_at__isnull=True)
        .first()
    )
    # The lookup is by hash already; the constant-time compare keeps it honest if the
    # lookup ever changes to something like a prefix match.
    if (
        token is None
        or not hmac.compare_digest(token.token_hash, digest)
        or not token.user.is_active
    ):
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user
