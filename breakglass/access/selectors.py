"""Reads for the registry and grants. Views, commands and other apps read through here."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import Prefetch, QuerySet

from breakglass.access.models import ApiToken, Approval, BackupPath, CriticalService, Grant
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
        ca = path.ssh_ca.kid if path.ssh_ca_id else "none"
        authorities = {ssh_authority(ca=ca, principal=p) for p in path.ssh_principals or []}
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


def grants_awaiting_approval_by(*, user: User) -> QuerySet[Grant]:
    """Pending requests this user may approve: their approver groups, not their own."""
    return (
        _grants()
        .filter(state=Grant.State.PENDING, path__approver_group__in=user.groups.all())
        .exclude(requester=user)
        .distinct()
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


def grant_visible_to(*, grant: Grant, user: User) -> bool:
    """Whether someone may see a grant's details (never its credential, which only the
    grantee sees): its requester, the path's approvers, incident commanders and
    administrators. The console and the API both ask here, so they cannot drift apart."""
    from breakglass.accounts import roles

    return (
        grant.requester_id == user.pk
        or user_is_path_approver(user=user, path=grant.path)
        or roles.user_has_role(user, roles.INCIDENT_COMMANDER)
        or roles.user_has_role(user, roles.ADMINISTRATOR)
    )


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
