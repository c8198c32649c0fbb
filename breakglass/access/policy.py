"""Changing the policy that guards a backup path: the two-person rule.

One administrator proposes (`path_policy_propose`). A change that only strengthens the
path applies at once. A change that weakens it (see `policy_weakenings`) waits for a
second administrator, who approves it from a session with a fresh OTP
(`path_policy_approve`, behind `@sudo_required` in the console); the proposer can never
approve their own change. Every step is an audit event in the same transaction, and the
other administrators are e-mailed when a weakening change waits. This is NIST SP 800-53
AC-3(2) (dual authorization): no single administrator can quietly turn a 2-approval path
into a 1-approval, self-issue one. The Django admin shows paths read-only for that reason
(breakglass/access/admin.py).

Who may is `selectors.path_policy_change_allowed` (administrators), which the console's
page and its link ask too.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from breakglass.access.errors import GrantError, grant_refuse
from breakglass.access.models import (
    BackupPath,
    PolicyChange,
    validate_ssh_force_command,
    validate_ssh_principals,
    validate_ssh_source_addresses,
)
from breakglass.access.selectors import path_policy_change_allowed, paths_weaker_siblings
from breakglass.accounts import roles
from breakglass.audit.services import audit_record
from breakglass.outbox.services import outbox_enqueue

# The fields that decide who can get what through a path, in display order.
POLICY_FIELDS = (
    "approvals_required",
    "allow_self_issue",
    "responder_group",
    "approver_group",
    "ssh_ca",
    "max_lifetime_minutes",
    "scopes",
    "ssh_principals",
    "ssh_source_addresses",
    "ssh_force_command",
    "is_active",
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._@-]{0,63}$")


def path_policy(*, path: BackupPath) -> dict:
    """The path's guarding policy as plain JSON (groups by name, the CA by kid)."""
    return {
        "approvals_required": path.approvals_required,
        "allow_self_issue": path.allow_self_issue,
        "responder_group": path.responder_group.name,
        "approver_group": path.approver_group.name,
        "ssh_ca": path.ssh_ca.kid if path.ssh_ca_id else None,
        "max_lifetime_minutes": path.max_lifetime_minutes,
        "scopes": sorted(path.scopes or []),
        "ssh_principals": sorted(path.ssh_principals or []),
        "ssh_source_addresses": sorted(path.ssh_source_addresses or []),
        "ssh_force_command": path.ssh_force_command,
        "is_active": path.is_active,
    }


def policy_weakenings(*, before: dict, after: dict) -> list[str]:
    """Why `after` is weaker than `before`, one phrase per reason; empty when it is not.

    A different group or CA counts as weaker whatever its size: who is in it is not
    fixed, and a change of who may ask or approve is exactly what needs a second person.
    """
    reasons = []
    if after["approvals_required"] < before["approvals_required"]:
        reasons.append(
            f"approvals required {before['approvals_required']} -> {after['approvals_required']}"
        )
    if after["allow_self_issue"] and not before["allow_self_issue"]:
        reasons.append("emergency self-issue turned on")
    for field, label in (("responder_group", "responder"), ("approver_group", "approver")):
        if after[field] != before[field]:
            reasons.append(f"{label} group {before[field]} -> {after[field]}")
    if after["ssh_ca"] != before["ssh_ca"]:
        reasons.append(f"SSH CA {before['ssh_ca'] or 'none'} -> {after['ssh_ca'] or 'none'}")
    if after["max_lifetime_minutes"] > before["max_lifetime_minutes"]:
        reasons.append(
            f"longest lifetime {before['max_lifetime_minutes']} -> "
            f"{after['max_lifetime_minutes']} minutes"
        )
    # (SSH principals: an empty list means the path's own bg-<slug>; any new name counts.)
    for field, label in (("scopes", "scopes"), ("ssh_principals", "SSH principals")):
        added = sorted(set(after[field]) - set(before[field]))
        if added:
            reasons.append(f"new {label}: {', '.join(added)}")
    old_sources, new_sources = (
        set(before["ssh_source_addresses"]),
        set(after["ssh_source_addresses"]),
    )
    if old_sources and not (new_sources and new_sources <= old_sources):
        reasons.append(
            f"SSH source addresses {', '.join(sorted(old_sources))} -> "
            f"{', '.join(sorted(new_sources)) or 'anywhere'}"
        )
    if before["ssh_force_command"] and after["ssh_force_command"] != before["ssh_force_command"]:
        reasons.append(
            f"forced command {before['ssh_force_command']!r} -> "
            f"{after['ssh_force_command'] or 'none (a shell)'!r}"
        )
    if after["is_active"] and not before["is_active"]:
        reasons.append("path re-activated")
    return reasons


def _require_administrator(actor: User) -> None:
    if not path_policy_change_allowed(user=actor):
        raise GrantError(
            "Only administrators change path policy.", code="not_administrator", status=403
        )


def _clean(changes: dict, *, path: BackupPath) -> dict:
    """Validate proposed values; raise GrantError naming the first bad one."""
    from breakglass.keys.models import SigningKey

    clean: dict = {}
    for field, value in changes.items():
        if field not in POLICY_FIELDS:
            raise GrantError(f"{field} is not a policy field.", code="invalid")
        if field == "approvals_required":
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10:
                raise GrantError("Approvals required must be 1 to 10.", code="invalid")
        elif field == "max_lifetime_minutes":
            cap = min(24 * 60, settings.BREAKGLASS_MAX_TOKEN_LIFETIME_MINUTES)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= cap:
                raise GrantError(f"Longest lifetime must be 1 to {cap} minutes.", code="invalid")
        elif field in ("allow_self_issue", "is_active"):
            if not isinstance(value, bool):
                raise GrantError(f"{field} must be true or false.", code="invalid")
        elif field in ("responder_group", "approver_group"):
            if not Group.objects.filter(name=value).exists():
                raise GrantError(f"There is no group {value!r}.", code="invalid")
        elif field == "ssh_ca":
            if path.method != BackupPath.Method.SSH_CERTIFICATE:
                raise GrantError("Only SSH paths have a CA.", code="invalid")
            if not SigningKey.objects.filter(
                kid=value, purpose=SigningKey.Purpose.SSH_CA, state=SigningKey.State.ACTIVE
            ).exists():
                raise GrantError(f"There is no active SSH CA {value!r}.", code="invalid")
        elif field == "scopes":
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(item, str) and _NAME.match(item) for item in value)
            ):
                raise GrantError(
                    "Scopes must be one or more names of letters, digits and :._@- .",
                    code="invalid",
                )
            value = sorted(set(value))
        elif field in ("ssh_principals", "ssh_source_addresses", "ssh_force_command"):
            if path.method != BackupPath.Method.SSH_CERTIFICATE:
                raise GrantError(f"Only SSH paths have {field}.", code="invalid")
            # The model's own validators: one home for what sshd accepts.
            validator = {
                "ssh_principals": validate_ssh_principals,
                "ssh_source_addresses": validate_ssh_source_addresses,
                "ssh_force_command": validate_ssh_force_command,
            }[field]
            try:
                validator(value)
            except ValidationError as exc:
                raise GrantError(" ".join(exc.messages), code="invalid") from None
            if isinstance(value, list):
                value = sorted(set(value))
        clean[field] = value
    return clean


def _apply(*, path: BackupPath, after: dict) -> None:
    from breakglass.keys.models import SigningKey

    path.approvals_required = after["approvals_required"]
    path.allow_self_issue = after["allow_self_issue"]
    path.responder_group = Group.objects.get(name=after["responder_group"])
    path.approver_group = Group.objects.get(name=after["approver_group"])
    path.ssh_ca = SigningKey.objects.get(kid=after["ssh_ca"]) if after["ssh_ca"] else None
    path.max_lifetime_minutes = after["max_lifetime_minutes"]
    path.scopes = list(after["scopes"])
    path.ssh_principals = list(after["ssh_principals"])
    path.ssh_source_addresses = list(after["ssh_source_addresses"])
    path.ssh_force_command = after["ssh_force_command"]
    path.is_active = after["is_active"]


def _proposed_copy(*, path: BackupPath, after: dict) -> BackupPath:
    """The path as it would be, checked by the model's own validation (one CA per SSH
    path, valid principals...), so an approval never fails at save time."""
    proposed = BackupPath.objects.select_related("service", "ssh_ca").get(pk=path.pk)
    _apply(path=proposed, after=after)
    try:
        proposed.full_clean(exclude=["requires"])
    except ValidationError as exc:
        raise GrantError(" ".join(exc.messages), code="invalid") from None
    return proposed


def _new_weaker_siblings(*, path: BackupPath, after: dict) -> list[str]:
    """Weaker-sibling findings the change would add (the rule: core/depgraph.py)."""
    proposed = _proposed_copy(path=path, after=after)
    before = {
        str(f) for f in paths_weaker_siblings(proposed=None) if path.slug in (f.stronger, f.weaker)
    }
    return [str(f) for f in paths_weaker_siblings(proposed=proposed) if str(f) not in before]


def _sibling_refusal(found: list[str]) -> bool:
    return bool(found) and settings.BREAKGLASS_WEAKER_SIBLING == "error"


def _refuse_weaker_sibling(*, path: BackupPath, found: list[str], actor: User):
    """Audit and raise, outside the change's transaction (which wrote nothing)."""
    grant_refuse(
        message=f"Refused: {found[0]} (BREAKGLASS_WEAKER_SIBLING=error).",
        code="weaker_sibling",
        action="path.policy_change_refused",
        actor=actor,
        obj=path,
        data={"weaker_siblings": found},
    )


def _notify_administrators(*, change: PolicyChange) -> None:
    others = (
        User.objects.filter(is_active=True)
        .filter(groups__name=roles.ADMINISTRATOR)
        .exclude(pk=change.proposed_by_id)
        .exclude(email="")
        .distinct()
        .order_by("username")
    )
    body = "\n".join(
        [
            f"{change.proposed_by.get_username()} proposes to weaken the backup path "
            f"{change.path.slug}:",
            *(f"  - {reason}" for reason in change.weakens),
            "",
            f"Reason given: {change.reason}",
            "",
            "It takes effect only when another administrator approves it with a fresh OTP:",
            f"{settings.BREAKGLASS_BASE_URL}/access/policy/{change.pk}/approve/",
        ]
    )
    for admin in others:
        outbox_enqueue(
            kind="email",
            idempotency_key=f"policy-change:{change.pk}:proposed:{admin.email}",
            recipient=admin.email,
            source=f"breakglass.policychange:{change.pk}",
            payload={
                "subject": f"[Breakglass] Approval needed: weaker policy on {change.path.slug}",
                "body": body,
                "to": [admin.email],
            },
        )


def path_policy_propose(
    *, path: BackupPath, changes: dict, reason: str, actor: User
) -> PolicyChange:
    """Propose a policy change. Applied at once when it weakens nothing; otherwise left
    pending for a second administrator. Raises GrantError for a refused proposal."""
    _require_administrator(actor)
    reason = (reason or "").strip()
    if not reason:
        raise GrantError("Say why the policy should change.", code="reason_required")
    with transaction.atomic():
        path = BackupPath.objects.select_for_update().get(pk=path.pk)
        before = path_policy(path=path)
        after = {**before, **_clean(changes, path=path)}
        if after == before:
            raise GrantError("Nothing would change.", code="no_change")
        weakens = policy_weakenings(before=before, after=after)
        siblings = _new_weaker_siblings(path=path, after=after)
        if _sibling_refusal(siblings):
            refused = siblings
        else:
            refused = None
            change = _propose_write(
                path=path,
                before=before,
                after=after,
                weakens=weakens,
                siblings=siblings,
                reason=reason,
                actor=actor,
            )
    if refused:
        _refuse_weaker_sibling(path=path, found=refused, actor=actor)
    return change


def _propose_write(
    *, path, before: dict, after: dict, weakens: list, siblings: list, reason: str, actor
) -> PolicyChange:
    """Inside the proposal's transaction: record it, then apply it at once unless it
    weakens the path (then tell the other administrators and wait)."""
    change = PolicyChange.objects.create(
        path=path,
        before=before,
        after=after,
        weakens=weakens,
        reason=reason[:2000],
        proposed_by=actor,
    )
    data = {"change": change.pk, "before": before, "after": after, "reason": reason[:500]}
    if siblings:
        data["weaker_siblings"] = siblings
    if weakens:
        audit_record(
            action="path.policy_change_proposed",
            actor=actor,
            obj=path,
            data={**data, "weakens": weakens},
        )
        _notify_administrators(change=change)
        return change
    # Strengthening (or neutral): no second person needed.
    _apply(path=path, after=after)
    path.save()
    change.state = PolicyChange.State.APPLIED
    change.decided_by = actor
    change.decided_at = timezone.now()
    change.save(update_fields=["state", "decided_by", "decided_at"])
    audit_record(action="path.policy_changed", actor=actor, obj=path, data=data)
    return change


def path_policy_approve(*, change: PolicyChange, actor: User) -> PolicyChange:
    """The second administrator's approval: applies a pending weakening change. The
    console calls this only from a session with a fresh OTP (`@sudo_required`)."""
    _require_administrator(actor)
    if change.proposed_by_id == actor.pk:
        grant_refuse(
            message="You proposed this change; another administrator must approve it.",
            code="self_approval",
            status=403,
            action="path.policy_self_approval_refused",
            actor=actor,
            obj=change.path,
            data={"change": change.pk},
        )
    stale, refused = False, None
    with transaction.atomic():
        change = PolicyChange.objects.select_for_update().get(pk=change.pk)
        if change.state != PolicyChange.State.PENDING:
            raise GrantError(
                f"This change is already {change.get_state_display().lower()}.", code="decided"
            )
        path = BackupPath.objects.select_for_update().get(pk=change.path_id)
        if path_policy(path=path) != change.before:
            # Applying `after` now would silently undo whatever changed in between.
            change.state = PolicyChange.State.STALE
            change.decided_by = actor
            change.decided_at = timezone.now()
            change.save(update_fields=["state", "decided_by", "decided_at"])
            audit_record(
                action="path.policy_change_stale",
                actor=actor,
                obj=path,
                data={"change": change.pk},
            )
            stale = True
        elif _sibling_refusal(siblings := _new_weaker_siblings(path=path, after=change.after)):
            refused = siblings
        else:
            _apply(path=path, after=change.after)
            path.save()
            change.state = PolicyChange.State.APPLIED
            change.decided_by = actor
            change.decided_at = timezone.now()
            change.save(update_fields=["state", "decided_by", "decided_at"])
            data = {
                "change": change.pk,
                "before": change.before,
                "after": change.after,
                "weakens": change.weakens,
                "proposed_by": change.proposed_by.get_username(),
                "approved_by": actor.get_username(),
            }
            if siblings:
                data["weaker_siblings"] = siblings
            audit_record(action="path.policy_changed", actor=actor, obj=path, data=data)
    if stale:
        raise GrantError(
            "The path's policy changed after this was proposed; propose the change again.",
            code="stale",
        )
    if refused:
        _refuse_weaker_sibling(path=change.path, found=refused, actor=actor)
    return change


def path_policy_reject(*, change: PolicyChange, actor: User, note: str = "") -> PolicyChange:
    """Refuse a pending change (any administrator; the proposer withdrawing it too)."""
    _require_administrator(actor)
    with transaction.atomic():
        change = PolicyChange.objects.select_for_update().get(pk=change.pk)
        if change.state != PolicyChange.State.PENDING:
            raise GrantError(
                f"This change is already {change.get_state_display().lower()}.", code="decided"
            )
        change.state = PolicyChange.State.REJECTED
        change.decided_by = actor
        change.decided_at = timezone.now()
        change.decision_note = (note or "").strip()[:2000]
        change.save(update_fields=["state", "decided_by", "decided_at", "decision_note"])
        audit_record(
            action="path.policy_change_rejected",
            actor=actor,
            obj=change.path,
            data={"change": change.pk, "note": change.decision_note[:500]},
        )
    return change
