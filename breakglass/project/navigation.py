"""The console's navigation: which links each person sees.

A link is shown exactly when its page would open for this person: each item names the
same rule the page's own guard asks (`audit_read_allowed` for the audit log,
`comms_can_act` for the incident console, the admin site's `has_permission`, ...), never
a copy of it. Pages with no guard beyond the verified session (the closed-by-default
middleware) are open to everyone who sees the console at all. tests/project/
test_navigation.py walks every role through every link to keep it that way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import admin
from django.http import HttpRequest

from breakglass.access.selectors import path_policy_change_allowed
from breakglass.audit.selectors import audit_read_allowed
from comms.incidents import comms_can_act


def _everyone(request: HttpRequest) -> bool:
    """Guarded only by the verified session the middleware already requires."""
    return True


@dataclass(frozen=True)
class NavItem:
    title: str
    url: str
    allowed: Callable[[HttpRequest], bool]
    summary: str = ""
    # The item is the current page under this URL prefix; empty: on `url` itself only.
    prefix: str = ""

    def current(self, path: str) -> bool:
        return path.startswith(self.prefix) if self.prefix else path == self.url


AREAS = [
    NavItem(
        "Access",
        "/access/",
        _everyone,
        "Critical services, their backup paths, and emergency grants: request, approve, "
        "break the glass, revoke, review.",
        prefix="/access/",
    ),
    NavItem(
        "Drills",
        "/drills/",
        _everyone,
        "Scheduled drills that prove every backup path still works end to end.",
        prefix="/drills/",
    ),
    NavItem(
        "Comms",
        "/comms/",
        lambda request: comms_can_act(request.user),
        "Incidents, status updates, subscribers and the public status page.",
        prefix="/comms/",
    ),
    NavItem(
        "Audit",
        "/audit/",
        lambda request: audit_read_allowed(user=request.user),
        "The tamper-evident log of everything that happened, and its chain check.",
        prefix="/audit/",
    ),
    NavItem(
        "Keys",
        "/trust/keys/",
        _everyone,
        "Signing keys, the trust bundle services verify against, and the sealed offline kits.",
        prefix="/trust/",
    ),
    NavItem("Admin", "/admin/", admin.site.has_permission, "The Django admin.", prefix="/admin/"),
]

ACCESS = [
    NavItem("Registry", "/access/", _everyone),
    NavItem("My grants", "/access/mine/", _everyone),
    NavItem("Approvals", "/access/approvals/", _everyone),
    NavItem("Active grants", "/access/active/", _everyone),
    NavItem("Post-use reviews", "/access/reviews/", _everyone),
    NavItem("API tokens", "/access/api-tokens/", _everyone),
    NavItem(
        "Policy changes",
        "/access/policy/",
        lambda request: path_policy_change_allowed(user=request.user),
    ),
]


@dataclass(frozen=True)
class NavLink:
    item: NavItem
    current: bool

    @property
    def title(self) -> str:
        return self.item.title

    @property
    def url(self) -> str:
        return self.item.url


def nav_links(request: HttpRequest, items: list[NavItem]) -> list[NavLink]:
    """The items this person may open, each marked when it is the page being shown."""
    if not (request.user.is_authenticated and request.user.is_verified()):
        return []
    return [NavLink(item, item.current(request.path)) for item in items if item.allowed(request)]
