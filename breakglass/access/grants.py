"""The rules of asking for access: requesting, approving and breaking the glass.

Every refusal raises `GrantError` with a message a person can act on. Refusals that
matter for security (self-approval, an ineligible requester, a blocked emergency issue)
are written to the audit log in their own committed transaction first, so the attempt
leaves a trace while the grant itself is left exactly as it was.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from breakglass.access.credentials import grant_issue_credential
from breakglass.access.errors import GrantError, Problem, grant_refuse
from breakglass.access.models import Approval, BackupPath, Grant
from breakglass.access.selectors import (
    grant_approve_problem,
    grant_review_blocking,
    path_approvers,
    path_get,
    unknown_path_message,
    user_is_path_responder,
)
from breakglass.audit.services import audit_record
from breakglass.core.ssh import InvalidSshPublicKey, ssh_public_key_parse
from breakglass.outbox.services import email_enqueue
from breakglass.project.transient import retry_transient


def path_resolve(*, slug: str) -> BackupPath:
    """The active path with this slug, or a clear error (commands and the API take slugs)."""
    path = path_get(slug=(slug or "").strip())
    if path is None:
        active = BackupPath.objects.filter(is_active=True).values_list("slug", flat=True)
        raise GrantError(unknown_path_message(slug, active), code="unknown_path", status=404)
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
    """A human explanation of what is wrong with an SSH public key, or None if it is usable.

    The rule itself lives in `breakglass.core.ssh.ssh_public_key_parse`, which certificate
    issue runs again: a key accepted here is a key the CA will sign, so a request is
    never approved only to fail at the k-th approval (RSA under 2048 bits used to).
    """
    if not (key or "").strip():
        return "This path issues SSH certificates: paste your SSH public key (the .pub file)."
    try:
        ssh_public_key_parse(key)
    except InvalidSshPublicKey as exc:
        message = str(exc)
        return f"{message[:1].upper()}{message[1:]}."
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
    more: Callable[[], list[tuple[Problem, bool]]] | None = None,
) -> _CleanRequest:
    """Check a request (or an emergency self-issue: `more` adds its own checks) and
    refuse it with every problem at once, so a form can show them all on one submit.

    A path that is inactive, or a requester who may not ask on it, is refused first and
    alone: nothing else about the request matters then. The refusal is audited unless
    each problem is one of plain malformed input (a lifetime that is not a number, an
    over-long incident reference, an unusable SSH key).
    """

    def refuse(problems: list[tuple[Problem, bool]]):
        message = " ".join(problem.message for problem, _audit in problems)
        data = {"path": path.slug}
        if len(problems) > 1:
            data["codes"] = [problem.code for problem, _audit in problems]
        grant_refuse(
            message=message,
            code=problems[0][0].code,
            action=refused_action if any(audit for _problem, audit in problems) else None,
            actor=requester,
            obj=path,
            data=data,
            problems=tuple(problem for problem, _audit in problems),
        )

    if not path.is_active:
        refuse([(Problem(None, f"Path {path.slug} is not active.", "inactive_path"), True)])
    if not user_is_path_responder(user=requester, path=path):
        refuse(
            [
                (
                    Problem(
                        None,
                        f"{requester.get_username()} is not an eligible responder on "
                        f"{path.slug} (members of the group '{path.responder_group.name}' are).",
                        "ineligible_requester",
                    ),
                    True,
                )
            ]
        )

    problems: list[tuple[Problem, bool]] = []

    def problem(field: str | None, message: str, code: str, audit: bool = True) -> None:
        problems.append((Problem(field, message, code), audit))

    reason = (reason or "").strip()
    if not reason:
        problem(
            "reason", "A reason is required: say what you need the access for.", "missing_reason"
        )
    if scopes is None or scopes == []:
        scopes = list(path.scopes)
    scopes = sorted({str(scope).strip() for scope in scopes if str(scope).strip()})
    outside = [scope for scope in scopes if scope not in path.scopes]
    if not scopes:
        problem(
            None, f"Path {path.slug} has no scopes configured; ask an administrator.", "no_scopes"
        )
    elif outside:
        problem(
            "scopes",
            f"Scope {', '.join(outside)} is outside this path; it can grant: "
            f"{', '.join(path.scopes) or 'no scopes'}.",
            "scope_outside_path",
        )
    if lifetime_minutes is None:
        lifetime_minutes = path.max_lifetime_minutes
    try:
        lifetime_minutes = int(lifetime_minutes)
    except (TypeError, ValueError):
        problem(
            "lifetime_minutes",
            "The lifetime must be a whole number of minutes.",
            "bad_lifetime",
            audit=False,
        )
        lifetime_minutes = path.max_lifetime_minutes
    else:
        if lifetime_minutes < 1:
            problem("lifetime_minutes", "The lifetime must be at least one minute.", "bad_lifetime")
        elif lifetime_minutes > path.max_lifetime_minutes:
            problem(
                "lifetime_minutes",
                f"A lifetime of {lifetime_minutes} minutes is over this path's maximum of "
                f"{path.max_lifetime_minutes} minutes.",
                "lifetime_over_maximum",
            )
    incident_ref = (incident_ref or "").strip()
    if len(incident_ref) > 100:
        problem(
            "incident_ref",
            "The incident reference is too long (100 characters at most).",
            "bad_incident",
            audit=False,
        )
    ssh_public_key = (ssh_public_key or "").strip()
    if path.method == BackupPath.Method.SSH_CERTIFICATE:
        key_problem = ssh_public_key_problem(ssh_public_key)
        if key_problem:
            problem("ssh_public_key", key_problem, "bad_ssh_public_key", audit=False)
    else:
        ssh_public_key = ""
    if more is not None:
        problems.extend(more())
    if problems:
        refuse(problems)
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


@retry_transient
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
            email_enqueue(
                to=approver.email,
                key=f"breakglass.grant:{grant.pk}:request:{approver.email}",
                source=f"breakglass.grant:{grant.pk}",
                subject=f"[Breakglass] Approval needed: {requester.get_username()} on {path.slug}",
                body=(
                    f"{requester.get_username()} asks for access on {path.name} ({path.slug}).\n"
                    f"Incident: {clean.incident_ref or 'NONE GIVEN'}\nReason: {clean.reason}\n"
                    f"Scopes: {', '.join(clean.scopes) or '-'}; lifetime {clean.lifetime_minutes} min.\n\n"
                    f"Review it: {settings.BREAKGLASS_BASE_URL}/access/grants/{grant.pk}/"
                ),
            )
    return grant


@retry_transient
def grant_approve(*, grant: Grant, approver: User) -> Grant:
    """Add one approval. The k-th distinct approval issues the credential.

    The grant row is locked, so two approvers pressing the button at once produce two
    approvals and exactly one issued credential.
    """
    problem: tuple[str, str] | None = None
    with transaction.atomic():
        # Lock the grant row only (of=self): the path and service rows are read, not
        # changed, and locking them too is what deadlocked with requests on the path.
        locked = (
            Grant.objects.select_for_update(of=("self",))
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
        problem = grant_approve_problem(grant=locked, user=approver, now=now)
        if problem is None:
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
    grant_refuse(
        message=problem[0],
        code=problem[1],
        status=409,
        action="grant.approval_refused",
        actor=approver,
        obj=grant,
        data={"path": grant.path.slug},
    )
    raise AssertionError("unreachable")  # pragma: no cover


@retry_transient
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

    def self_issue_problems() -> list[tuple[Problem, bool]]:
        problems = []
        if not path.allow_self_issue:
            problems.append(
                Problem(
                    None,
                    f"{path.slug} does not allow emergency self-issue; request approval instead.",
                    "self_issue_not_allowed",
                )
            )
        if (confirmation or "").strip() != path.slug:
            problems.append(
                Problem(
                    "confirmation",
                    f"To break the glass, type the path's slug exactly: {path.slug}",
                    "confirmation_mismatch",
                )
            )
        return [(problem, True) for problem in problems]

    clean = _check_request(
        path=path,
        requester=requester,
        reason=reason,
        scopes=scopes,
        lifetime_minutes=lifetime_minutes,
        incident_ref=incident_ref,
        ssh_public_key=ssh_public_key,
        refused_action="grant.self_issue_refused",
        more=self_issue_problems,
    )

    def refuse(message: str, code: str):
        grant_refuse(
            message=message,
            code=code,
            status=409,
            action="grant.self_issue_refused",
            actor=requester,
            obj=path,
            data={"path": path.slug},
        )

    blocked = False
    with transaction.atomic():
        # Lock the path so two simultaneous self-issues by one person cannot both pass
        # the "previous review closed" check. FOR NO KEY UPDATE: new grants on the path
        # (their foreign key takes KEY SHARE) are not held up by it.
        BackupPath.objects.select_for_update(no_key=True).filter(pk=path.pk).first()
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
