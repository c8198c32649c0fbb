"""How a grant ends: revoked by a person, closed by its post-use review, or expired."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from breakglass.access.errors import GrantError, grant_refuse
from breakglass.access.models import Grant
from breakglass.access.selectors import (
    drill_grants_open,
    grant_review_problem,
    grant_revoke_allowed,
)
from breakglass.audit.services import audit_record
from breakglass.keys.services import credential_revoke
from breakglass.project.transient import retry_transient


@retry_transient
def grant_revoke(*, grant: Grant, actor: User | None, reason: str) -> Grant:
    """End a grant early. An issued credential goes on the revocation list, so the next
    trust bundle names its jti; a pending request is simply withdrawn."""
    reason = (reason or "").strip()
    if not reason:
        grant_refuse(message="A reason is required to revoke a grant.", code="missing_reason")
    if not grant_revoke_allowed(grant=grant, user=actor):
        grant_refuse(
            message="Only the grantee, the path's approvers, an incident commander or an administrator can revoke this grant.",
            code="not_allowed",
            status=403,
            action="grant.revoke_refused",
            actor=actor,
            obj=grant,
        )
    with transaction.atomic():
        locked = (
            Grant.objects.select_for_update(of=("self",)).select_related("path").get(pk=grant.pk)
        )
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
                # The serial the path's CA signed the certificate with (credentials.py). A
                # kit's certificate was signed by the kit's own CA for the path, under a
                # serial of its own: retiring the kit is what cuts those off (its CA goes
                # into the path's KRL), so only the jti is revoked here.
                path_ca_signed = locked.is_ssh and locked.kit_id is None
                credential_revoke(
                    jti=locked.jti,
                    expires_at=locked.expires_at,
                    reason=reason,
                    actor=actor,
                    ssh_ca=locked.path.ssh_ca if path_ca_signed else None,
                    ssh_serial=locked.pk if path_ca_signed else None,
                )
            return locked
    grant_refuse(
        message=f"This grant is already {state}; there is nothing to revoke.",
        code="not_revocable",
        status=409,
    )
    raise AssertionError("unreachable")  # pragma: no cover


@retry_transient
def grant_review_close(*, grant: Grant, reviewer: User, notes: str) -> Grant:
    """Close the post-use review of an emergency grant (unblocks the grantee's next one)."""
    notes = (notes or "").strip()
    if not notes:
        grant_refuse(
            message="Write review notes: what was done with the access, and was it justified?",
            code="missing_notes",
        )
    problem = grant_review_problem(grant=grant, user=reviewer)
    if problem is not None:
        grant_refuse(
            message=problem[0],
            code=problem[1],
            status=403,
            action="grant.review_refused",
            actor=reviewer,
            obj=grant,
        )
    with transaction.atomic():
        locked = (
            Grant.objects.select_for_update(of=("self",)).select_related("path").get(pk=grant.pk)
        )
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
    grant_refuse(message="This grant has no open review.", code="no_open_review", status=409)
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


def drill_grants_revoke(*, drill_ref: str, reason: str) -> int:
    """Revoke every credential a drill run issued (`drill_ref`), in one transaction:
    called when a run finishes, is aborted, abandoned or given up by the reaper, so no
    approval-free credential outlives its drill. Idempotent; returns how many it revoked."""
    revoked = 0
    with transaction.atomic():
        for grant in drill_grants_open(drill_ref=drill_ref).order_by("pk"):
            try:
                grant_revoke(grant=grant, actor=None, reason=f"drill ended: {reason}")
            except GrantError as exc:
                if exc.code != "not_revocable":  # revoked meanwhile by someone else: fine
                    raise
            else:
                revoked += 1
    return revoked
