"""The rules about backup paths that need the whole registry: the circular-dependency
check and the weaker-sibling check. Pure Python, no Django.

A backup path exists to get into a service when that service (or what it stands on) is
down. A path that itself needs the protected service, directly or through the
dependency graph, fails exactly when it is needed: the "you need SSO to fix SSO" trap.
So is a path that needs anything that *depends on* the protected service, because
that thing is likely down too (chat that logs in through SSO cannot be used to fix SSO).

`graph` maps a service slug to the slugs it depends on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


def dependency_chain(
    *, protected: str, requires: Iterable[str], graph: Mapping[str, Iterable[str]]
) -> list[str] | None:
    """The shortest chain proving the path depends on `protected`, or None if it does not.

    The chain starts and ends at the protected service and walks the real dependency
    edges in between, e.g. ``["sso", "vpn", "sso"]`` for a path into SSO that requires the
    VPN, which depends on SSO. A path that requires the protected service itself gives
    ``["sso", "sso"]``. Breadth-first, so the chain is the shortest one, and it walks each
    service once, so cycles elsewhere in the graph cannot loop it.
    """
    # Breadth-first over "what does the path need, and what do those need", starting
    # from each requirement. The first time we reach `protected`, the parents give the
    # shortest chain of dependency edges back to one of the path's own requirements.
    parent: dict[str, str | None] = {}
    queue: deque[str] = deque()
    for slug in sorted(set(requires)):
        if slug not in parent:
            parent[slug] = None
            queue.append(slug)
    while queue:
        current = queue.popleft()
        if current == protected:
            chain = [current]
            step = parent[current]
            while step is not None:
                chain.append(step)
                step = parent[step]
            chain.reverse()
            return [protected, *chain]
        for dependency in sorted(set(graph.get(current, ()))):
            if dependency not in parent:
                parent[dependency] = current
                queue.append(dependency)
    return None


def service_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Every service that depends on itself, with its shortest cycle (a graph sanity check)."""
    found = []
    for slug in sorted(graph):
        chain = dependency_chain(protected=slug, requires=graph.get(slug, ()), graph=graph)
        if chain is not None:
            found.append(chain)
    return found


# --- Weaker siblings ---------------------------------------------------------------------
#
# Two paths that yield the same authority are only as strong as the weaker one: a token
# from `sso-admin-via-chat` (1 approval) is accepted for aud=sso scope=admin exactly like
# one from `sso-break-glass` (2 approvals), so the second approval guards nothing. An
# authority is what a verifier accepts: for signed tokens the audience (the service slug)
# and one scope; for SSH certificates the certificate authority and one principal.


@dataclass(frozen=True)
class PathGuard:
    """What a path yields and how it is guarded, as plain data."""

    slug: str
    authorities: frozenset[str]
    approvals_required: int
    allow_self_issue: bool


@dataclass(frozen=True)
class WeakerSibling:
    """`weaker` reaches `authority`, which `stronger` guards more strictly."""

    stronger: str
    weaker: str
    authority: str
    reason: str

    def __str__(self) -> str:
        return f"{self.weaker} reaches {self.authority} with {self.reason} than {self.stronger}"


def token_authority(*, service: str, scope: str) -> str:
    return f"aud={service} scope={scope}"


def ssh_authority(*, ca: str, principal: str) -> str:
    return f"ssh-ca={ca} principal={principal}"


def _weakness(weaker: PathGuard, stronger: PathGuard) -> str | None:
    if weaker.allow_self_issue and not stronger.allow_self_issue:
        return "self-issue (no approval)"
    if not weaker.allow_self_issue and weaker.approvals_required < stronger.approvals_required:
        return (
            f"{weaker.approvals_required} approval{'s' if weaker.approvals_required != 1 else ''}"
            f" instead of {stronger.approvals_required}"
        )
    return None


def weaker_siblings(paths: Iterable[PathGuard]) -> list[WeakerSibling]:
    """Every (stronger, weaker, authority) where another path reaches the same authority
    with fewer approvals, or by self-issue where the stronger path allows none. Sorted,
    one finding per pair and authority."""
    by_authority: dict[str, list[PathGuard]] = {}
    for path in paths:
        for authority in path.authorities:
            by_authority.setdefault(authority, []).append(path)
    found = []
    for authority, sharing in sorted(by_authority.items()):
        for stronger in sharing:
            for weaker in sharing:
                if weaker.slug == stronger.slug:
                    continue
                reason = _weakness(weaker, stronger)
                if reason is not None:
                    found.append(WeakerSibling(stronger.slug, weaker.slug, authority, reason))
    return sorted(found, key=lambda f: (f.stronger, f.weaker, f.authority))
