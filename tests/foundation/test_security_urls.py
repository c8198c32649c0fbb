"""Every URL in the project needs an OTP-verified session unless its view is explicitly
marked @public or @login_only. This walks the whole URL tree, so it protects every
area's views, including ones added after it was written."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.converters import (
    IntConverter,
    PathConverter,
    SlugConverter,
    StringConverter,
    UUIDConverter,
)
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RegexPattern, RoutePattern

from devkit.factories import user_make

# Sample values for route converters. The middleware refuses before the view runs, so
# the object need not exist; patterns whose parameters cannot be filled are skipped.
_SAMPLES = {
    IntConverter: "1",
    SlugConverter: "sample",
    StringConverter: "sample",
    PathConverter: "sample",
    UUIDConverter: str(uuid.UUID(int=1)),
}
_ROUTE_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
_REGEX_META = re.compile(r"[.*+?\[\](){}|\\]")


def _concrete(pattern) -> str | None:
    """A concrete path fragment for one pattern, or None if it cannot be filled in."""
    if isinstance(pattern, RoutePattern):
        route = str(pattern)

        def fill(match):
            converter = pattern.converters.get(match["name"])
            sample = _SAMPLES.get(type(converter))
            if sample is None:
                raise LookupError(match["name"])
            return sample

        try:
            return _ROUTE_PARAM.sub(fill, route)
        except LookupError:
            return None
    if isinstance(pattern, RegexPattern):
        regex = pattern.regex.pattern.removeprefix("^").removesuffix("$").removesuffix(r"\Z")
        if pattern.regex.groups or _REGEX_META.search(regex):
            return None
        return regex
    return None


def project_paths() -> list[str]:
    """Every path the URL tree can serve that can be filled in, deduplicated."""
    paths: set[str] = set()

    def walk(resolver: URLResolver, prefix: str) -> None:
        for entry in resolver.url_patterns:
            fragment = _concrete(entry.pattern)
            if fragment is None:
                continue
            if isinstance(entry, URLResolver):
                walk(entry, prefix + fragment)
            elif isinstance(entry, URLPattern):
                paths.add("/" + prefix + fragment)

    walk(get_resolver(), "")
    return sorted(paths)


def access_of(path: str) -> str | None:
    func = resolve(path).func
    return getattr(func, "breakglass_access", None) or getattr(
        getattr(func, "view_class", None), "breakglass_access", None
    )


PATHS = project_paths()


def test_the_walk_finds_the_console_the_accounts_pages_and_the_admin():
    assert {"/", "/accounts/", "/accounts/verify/", "/admin/"} <= set(PATHS)
    assert "/accounts/devices/1/remove/" in PATHS  # parameters are filled in


@pytest.fixture
def password_only(db):
    user = user_make("pat-password-only", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("path", PATHS)
def test_every_view_needs_a_verified_session_unless_marked(path, password_only):
    try:
        access = access_of(path)
    except Resolver404:
        pytest.skip("shadowed by an earlier pattern")
    if access == "public":
        return  # explicitly public: the status page, trust bundle, log-in itself

    anonymous = Client().get(path)
    assert anonymous.status_code == 302, f"{path} answered anonymous with {anonymous.status_code}"
    assert anonymous.url.startswith("/accounts/login/?next="), f"{path} -> {anonymous.url}"
    assert "Content-Security-Policy" in anonymous.headers

    if access == "login":
        return  # the OTP step and enrolment: a password is all they need
    response = password_only.get(path)
    assert response.status_code == 302, f"{path} answered password-only with {response.status_code}"
    assert response.url.startswith("/accounts/verify/?next="), f"{path} -> {response.url}"
