"""The circular-dependency check for backup paths. Pure Python, no Django.

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
