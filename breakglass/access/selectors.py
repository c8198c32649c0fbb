"""Reads for the registry and grants. Views, commands and other apps read through here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from breakglass.access.models import ApiToken, Approval, BackupPath, CriticalService, Grant
from breakglass.accounts import roles
from breakglass.core.depgraph import (
    PathGuard,
    WeakerSibling,
    dependency_chain,
    ssh_authority,
    token_authority,
    weaker_siblings,
)


def service_graph() -> dict[str, list[str]]:
    """Every service's slug mapped to the slugs it depends on, in one query."""
    graph: dict[str, list[str]] = {
        slug: [] for slug in CriticalService.objects.values_list("slug", flat=True)
    }
    edges = CriticalService.depends_on.through.objects.values_list(
        "from_criticalservice__slug", "to_criticalservice__slug"
    )
    for source, target in edges:
        graph[source].append(target)
    return graph


def path_dependency_chain(
    *, path: BackupPath, graph: dict[str, list[str]] | None = None
) -> list[str] | None:
    """The slug chain proving a path depends on what it protects (e.g. ["sso", "vpn", "sso"]).

    Pass `graph` (from `service_graph`) when checking many paths, to read the graph once.
    """
    if graph is None:
        graph = service_graph()
    requires = [service.slug for service in path.requires.all()]
    return dependency_chain(protected=path.service.slug, requires=requires, graph=graph)


def paths_with_chains(*, only_active: bool = True) -> list[tuple[BackupPath, list[str] | None]]:
    """Every path with its offending chain (None when sound), reading the graph once."""
    graph = service_graph()
    paths = BackupPath.objects.select_related("service", "approver_group", "responder_group")
    paths = paths.prefetch_related("requires")
    if only_active:
        paths = paths.filter(is_active=True)
    return [(path, path_dependency_chain(path=path, graph=graph)) for path in paths]


def path_flawed_list() -> list[tuple[BackupPath, list[str]]]:
    return [(path, chain) for path, chain in paths_with_chains() if chain is not None]


def path_guard(*, path: BackupPath) -> PathGuard:
    """The authority a path yields (what verifiers accept) and how it is guarded."""
    if path.method == BackupPath.Method.SSH_CERTIFICATE:
        # The CA's public key, not its row: hosts trust the key (ssh_paths_sharing_a_ca).
        ca = path.ssh_ca.public_key if path.ssh_ca_id else "none"
        authorities = {ssh_authority(ca=ca, principal=p) for p in path.ssh_principals_effective}
    else:
        authorities = {
            token_authority(service=path.service.slug, scope=scope) for scope in path.scopes or [""]
        }
    return PathGuard(
        slug=path.slug,
        authorities=frozenset(authorities),
        approvals_required=path.approvals_required,
        allow_self_issue=path.allow_self_issue,
    )


def paths_weaker_siblings(*, proposed: BackupPath | None = None) -> list[WeakerSibling]:
    """Every active path that reaches another's authority more cheaply (rule and reasons:
    `breakglass.core.depgraph.weaker_siblings`). `proposed` is an unsaved, edited copy of
    a path (or a new one): the registry is judged as if it were saved, and only findings
    that involve it are returned."""
    paths = {
        path.pk: path
        for path in BackupPath.objects.filter(is_active=True).select_related("service", "ssh_ca")
    }
    if proposed is not None:
        paths.pop(proposed.pk, None)
        if proposed.is_active:
            paths[proposed.pk or "proposed"] = proposed
    found = weaker_siblings(path_guard(path=path) for path in paths.values())
    if proposed is not None:
        found = [f for f in found if proposed.slug in (f.stronger, f.weaker)]
    return found


def ssh_paths_sharing_a_ca() -> list[tuple[BackupPath, BackupPath]]:
    """Pairs of SSH paths whose hosts would accept each other's certificates: their CAs
    have the same public key. The database refuses two paths on one CA row; this also
    catches the same key imported twice, or a database restored from before that rule."""
    by_key: dict[str, list[BackupPath]] = {}
    paths = BackupPath.objects.filter(
        method=BackupPath.Method.SSH_CERTIFICATE, ssh_ca__isnull=False
    ).select_related("ssh_ca")
    for path in paths.order_by("slug"):
        by_key.setdefault(path.ssh_ca.public_key, []).append(path)
    pairs = []
    for group in by_key.values():
        for index, first in enumerate(group):
            pairs.extend((first, second) for second in group[index + 1 :])
    return pairs


_KEY_FILES = {"ssh-ed25519": "id_ed25519", "ssh-rsa": "id_rsa"}


def ssh_login_command(*, path: BackupPath, public_key: str = "") -> str:
    """The exact command a responder runs with a certificate of this path: their own key
    (named after the type of the key they pasted), the certificate saved beside it, and
    the path's login and host. The grant page and the printed card both show this."""
    key_type = (public_key or "ssh-ed25519").split(" ", 1)[0]
    key_file = _KEY_FILES.get(
        key_type, "id_ecdsa" if key_type.startswith("ecdsa") else "id_ed25519"
    )
    return (
        f"ssh -i ~/.ssh/{key_file} -o CertificateFile=~/.ssh/{path.slug}-cert.pub "
        f"{path.ssh_login}@{path.ssh_host or 'HOST'}"
    )


def ssh_certificate_facts(*, credential: str) -> dict:
    """What the grant page spells out about an issued certificate (read from it)."""
    from cryptography.hazmat.primitives.serialization import load_ssh_public_identity

    certificate = load_ssh_public_identity(credential.strip().encode())
    return {
        "key_id": certificate.key_id.decode(errors="replace"),
        "serial": certificate.serial,
        "principals": [p.decode(errors="replace") for p in certificate.valid_principals],
        "critical_options": {
            name.decode(): value.decode(errors="replace")
            for name, value in certificate.critical_options.items()
        },
        "extensions": sorted(name.decode() for name in certificate.extensions),
    }


def path_ssh_get(*, slug: str) -> BackupPath | None:
    """An SSH path with its CA, for the public trust files (inactive paths too: their
    hosts still need the KRL until the last certificate has expired)."""
    return (
        BackupPath.objects.select_related("ssh_ca")
        .filter(slug=slug, method=BackupPath.Method.SSH_CERTIFICATE, ssh_ca__isnull=False)
        .first()
    )


def ssh_path_policies(*, slugs: list[str]) -> dict[str, dict]:
    """slug -> the certificate policy of each named SSH path a sealed kit may cover (active,
    with its CA, so it is in every bundle): {"path", **BackupPath.ssh_certificate_policy},
    the entry the kit carries less its CA line. Slugs that are not such a path are absent."""
    paths = BackupPath.objects.filter(
        slug__in=slugs,
        method=BackupPath.Method.SSH_CERTIFICATE,
        ssh_ca__isnull=False,
        is_active=True,
    )
    return {path.slug: {"path": path.slug, **path.ssh_certificate_policy} for path in paths}


def registry_services() -> QuerySet[CriticalService]:
    return CriticalService.objects.select_related("owning_team").prefetch_related(
        "depends_on",
        Prefetch(
            "backup_paths",
            queryset=BackupPath.objects.filter(is_active=True).prefetch_related("requires"),
        ),
    )


def path_get(*, slug: str) -> BackupPath | None:
    return (
        BackupPath.objects.select_related("service", "approver_group", "responder_group", "ssh_ca")
        .filter(slug=slug, is_active=True)
        .first()
    )


def unknown_path_message(slug: str, known, *, what: str = "path") -> str:
    """ "Unknown path 'x'. The paths: a, b." Commands and the API name the choices rather
    than send a person at 3 a.m. off to look them up."""
    listed = ", ".join(sorted(known)) or "none yet"
    return f"Unknown {what} {slug!r}. The {what}s: {listed}."


def paths_requestable_by(*, user: User) -> QuerySet[BackupPath]:
    return (
        BackupPath.objects.select_related("service")
        .filter(is_active=True, responder_group__in=user.groups.all())
        .distinct()
    )


def user_is_path_responder(*, user: User, path: BackupPath) -> bool:
    return user.is_active and user.groups.filter(pk=path.responder_group_id).exists()


def user_is_path_approver(*, user: User, path: BackupPath) -> bool:
    return user.is_active and user.groups.filter(pk=path.approver_group_id).exists()


def path_approvers(*, path: BackupPath) -> QuerySet[User]:
    return User.objects.filter(groups=path.approver_group_id, is_active=True).order_by("username")


def _grants() -> QuerySet[Grant]:
    return Grant.objects.select_related("path", "path__service", "requester").prefetch_related(
        Prefetch("approvals", queryset=Approval.objects.select_related("approver"))
    )


def grant_get(*, pk: int) -> Grant | None:
    return _grants().filter(pk=pk).first()


def grant_get_by_jti(*, jti: str) -> Grant | None:
    return _grants().filter(jti=jti).first()


def grants_of(*, user: User) -> QuerySet[Grant]:
    return _grants().filter(requester=user)


def grants_awaiting_approval_by(*, user: User, now: datetime | None = None) -> QuerySet[Grant]:
    """Pending requests waiting for this user's approval, oldest first: the set form of
    `grant_approve_problem` (unexpired, on a path they approve, not their own, not yet
    approved by them); tests/breakglass/test_selectors.py checks the two agree."""
    now = now or timezone.now()
    return (
        _grants()
        .filter(
            state=Grant.State.PENDING,
            request_expires_at__gt=now,
            path__approver_group__in=user.groups.all(),
        )
        .exclude(requester=user)
        .exclude(approvals__approver=user)
        .distinct()
        .order_by("created_at", "pk")
    )


def grants_waiting_of(*, user: User, now: datetime | None = None) -> QuerySet[Grant]:
    """This person's own requests still waiting for approvers."""
    now = now or timezone.now()
    return (
        _grants()
        .filter(requester=user, state=Grant.State.PENDING, request_expires_at__gt=now)
        .order_by("created_at", "pk")
    )


def grants_live_of(*, user: User, now: datetime | None = None) -> QuerySet[Grant]:
    """This person's issued grants that still work, the soonest to expire first."""
    now = now or timezone.now()
    return (
        _grants()
        .filter(requester=user, state=Grant.State.ISSUED, expires_at__gt=now)
        .order_by("expires_at", "pk")
    )


def grants_review_waiting_for(*, user: User) -> QuerySet[Grant]:
    """Open post-use reviews this user may close: the set form of `grant_review_problem`
    (an approver of the path or an administrator, never the grantee)."""
    grants = _grants().filter(review_required=True, reviewed_at__isnull=True)
    if not roles.user_has_role(user, roles.ADMINISTRATOR):
        grants = grants.filter(path__approver_group__in=user.groups.all())
    return grants.exclude(requester=user).distinct().order_by("issued_at", "pk")


def grants_under_review_of(*, user: User) -> QuerySet[Grant]:
    """This person's own emergency grants whose post-use review is still open."""
    return (
        _grants()
        .filter(requester=user, review_required=True, reviewed_at__isnull=True)
        .order_by("issued_at", "pk")
    )


def drill_credential_held(*, drill_ref: str, user: User) -> Grant | None:
    """The drill grant this person already received in this run, if any: one per
    participant per run (also a database constraint on Grant)."""
    return Grant.objects.filter(drill=True, drill_ref=drill_ref, requester=user).first()


def drill_grants_open(*, drill_ref: str) -> QuerySet[Grant]:
    """A run's drill grants that still unlock something (issued) or could (pending)."""
    return Grant.objects.filter(
        drill=True, drill_ref=drill_ref, state__in=[Grant.State.ISSUED, Grant.State.PENDING]
    )


def grants_active() -> QuerySet[Grant]:
    return _grants().filter(state=Grant.State.ISSUED).order_by("expires_at")


def grants_review_queue() -> QuerySet[Grant]:
    return _grants().filter(review_required=True, reviewed_at__isnull=True).order_by("issued_at")


def grant_review_blocking(*, path: BackupPath, user: User) -> Grant | None:
    """The person's earlier emergency grant on this path whose review is still open."""
    return (
        Grant.objects.filter(
            path=path,
            requester=user,
            emergency=True,
            review_required=True,
            reviewed_at__isnull=True,
        )
        .order_by("issued_at")
        .first()
    )


# --- What a person may do with a grant: the one home of these rules ------------------------
#
# Services enforce with the *_problem functions (on the row they hold locked); views, the
# API and templates display `grant_actions_for`, built from the same functions, so a
# button is shown exactly when pressing it would succeed.


def grant_visible_to(*, grant: Grant, user: User) -> bool:
    """Whether someone may see a grant's details (never its credential, which only the
    grantee sees): its requester, the path's approvers, incident commanders and
    administrators. The same people may revoke it (or withdraw it while pending)."""
    return (
        grant.requester_id == user.pk
        or user_is_path_approver(user=user, path=grant.path)
        or roles.user_has_role(user, roles.INCIDENT_COMMANDER)
        or roles.user_has_role(user, roles.ADMINISTRATOR)
    )


def grant_approve_problem(
    *, grant: Grant, user: User, now: datetime | None = None
) -> tuple[str, str] | None:
    """Why `user` cannot approve `grant` now, as (message, code), or None if they can."""
    now = now or timezone.now()
    path = grant.path
    expired_unapproved = grant.state == Grant.State.EXPIRED and grant.issued_at is None
    if expired_unapproved or (
        grant.state == Grant.State.PENDING and grant.request_expires_at <= now
    ):
        return (
            "This request expired before it was approved; the responder must ask again.",
            "request_expired",
        )
    if grant.state != Grant.State.PENDING:
        return (
            f"This request is no longer waiting for approval (it is {grant.state}).",
            "not_pending",
        )
    if user.pk == grant.requester_id:
        return ("You cannot approve your own request.", "self_approval")
    if not user_is_path_approver(user=user, path=path):
        return (
            f"You are not an approver for {path.slug} (members of '{path.approver_group.name}' are).",
            "not_an_approver",
        )
    if grant_approved_by(grant=grant, user=user):
        return (
            "You have already approved this request; another approver is needed.",
            "already_approved",
        )
    return None


def grant_approved_by(*, grant: Grant, user: User) -> bool:
    # Iterates the (usually prefetched) approvals rather than querying per grant.
    return any(approval.approver_id == user.pk for approval in grant.approvals.all())


def grant_revoke_allowed(*, grant: Grant, user: User | None) -> bool:
    """Who may revoke (or withdraw) a grant: whoever may see it. `None` is the command
    line, whose operator already owns the server. The state is checked under the lock."""
    return user is None or grant_visible_to(grant=grant, user=user)


def grant_review_problem(*, grant: Grant, user: User) -> tuple[str, str] | None:
    """Why `user` cannot close the post-use review of `grant` (who, not whether it is
    open: that is checked under the lock), as (message, code), or None."""
    if user.pk == grant.requester_id:
        return ("You cannot review your own emergency access.", "self_review")
    if not (
        user_is_path_approver(user=user, path=grant.path)
        or roles.user_has_role(user, roles.ADMINISTRATOR)
    ):
        return (
            f"Only approvers of {grant.path.slug} or an administrator can close this review.",
            "not_allowed",
        )
    return None


@dataclass(frozen=True)
class GrantActions:
    """What one person may do with one grant, now."""

    see: bool
    approve: bool
    approved_by_me: bool
    revoke: bool  # revoke an issued grant, or withdraw a pending request
    review: bool


def grant_actions_for(*, user: User, grant: Grant) -> GrantActions:
    see = grant_visible_to(grant=grant, user=user)
    return GrantActions(
        see=see,
        approve=grant_approve_problem(grant=grant, user=user) is None,
        approved_by_me=grant_approved_by(grant=grant, user=user),
        revoke=see
        and grant_revoke_allowed(grant=grant, user=user)
        and grant.state in (Grant.State.PENDING, Grant.State.ISSUED),
        review=grant.review_open and grant_review_problem(grant=grant, user=user) is None,
    )


def path_policy_change_allowed(*, user: User) -> bool:
    """Who proposes and approves changes to a path's policy: administrators (policy.py
    enforces it; the console's page and its link ask the same)."""
    return roles.user_has_role(user, roles.ADMINISTRATOR)


def api_tokens_of(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True)


def policy_changes_pending() -> QuerySet:
    from breakglass.access.models import PolicyChange

    return PolicyChange.objects.filter(state=PolicyChange.State.PENDING).select_related(
        "path", "proposed_by"
    )


def policy_changes_recent(*, limit: int = 50) -> list:
    from breakglass.access.models import PolicyChange

    changes = PolicyChange.objects.exclude(state=PolicyChange.State.PENDING)
    return list(changes.select_related("path", "proposed_by", "decided_by")[:limit])


def path_card(*, path: BackupPath) -> dict:
    """Everything the printed card for a path says, read once (see templates/access/card.html).

    The card is what a responder has when the console, the wiki and chat are down, so it
    names people with their addresses and spells out the URLs instead of linking to them.
    """
    from django.conf import settings

    base = settings.BREAKGLASS_BASE_URL
    owners = list(
        path.service.owning_team.members.filter(is_active=True).order_by("username")
        if path.service.owning_team_id
        else []
    )
    return {
        "path": path,
        "service": path.service,
        "chain": path_dependency_chain(path=path),
        "approvers": list(path_approvers(path=path)),
        "owners": owners,
        "security_contacts": list(settings.BREAKGLASS_SECURITY_CONTACTS),
        "requires": [service.slug for service in path.requires.all()],
        "is_ssh": path.method == BackupPath.Method.SSH_CERTIFICATE,
        "ssh_command": ssh_login_command(path=path),
        "console_url": f"{base}/",
        "request_url": f"{base}/access/paths/{path.slug}/request/",
        "break_glass_url": f"{base}/access/paths/{path.slug}/break-glass/",
        "offline_runbook": settings.BREAKGLASS_OFFLINE_RUNBOOK_URL,
    }
