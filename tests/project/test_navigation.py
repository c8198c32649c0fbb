"""Navigation follows the role: every link shown opens, every link hidden is refused, and
a refusal is one line in the log, never a traceback."""

from __future__ import annotations

import logging
import re

import pytest
from django.test import Client

from breakglass.accounts import roles
from breakglass.project import navigation
from devkit.factories import user_make, verified_client
from tests.project.server import runserver

PEOPLE = {
    "responder": {"role_names": (roles.RESPONDER,)},
    "approver": {"role_names": (roles.APPROVER,)},
    "commander": {"role_names": (roles.INCIDENT_COMMANDER,)},
    "comms-lead": {"role_names": (roles.COMMS_LEAD,)},
    "coordinator": {"role_names": (roles.DRILL_COORDINATOR,)},
    "administrator": {"role_names": (roles.ADMINISTRATOR,), "is_staff": True},
    "staff-without-role": {"is_staff": True},
    "no-role": {},
}
ITEMS = [*navigation.AREAS, *navigation.ACCESS]


def links_on(html: str, nav_label: str) -> set[str]:
    block = re.search(rf'<nav[^>]*aria-label="{nav_label}">(.*?)</nav>', html, re.S)
    assert block, f"no {nav_label} navigation"
    return set(re.findall(r'href="([^"]+)"', block.group(1)))


@pytest.mark.parametrize("who", PEOPLE)
def test_every_link_shown_opens_and_every_link_hidden_is_refused(trust, who, caplog):
    person = user_make(who, **PEOPLE[who])
    client = verified_client(person)
    shown = links_on(client.get("/access/").content.decode(), "Areas")
    shown |= links_on(client.get("/access/").content.decode(), "Access")
    assert shown <= {item.url for item in ITEMS} | {"/"}
    for item in ITEMS:
        with caplog.at_level(logging.INFO):
            caplog.clear()
            response = client.get(item.url, follow=True)
        if item.url in shown:
            assert response.status_code == 200, f"{who} is shown {item.url} but gets {response}"
            assert not response.redirect_chain, f"{who}: {item.url} redirects"
        else:
            assert response.status_code == 403, f"{who} is not shown {item.url}: {response}"
            assert b"Not allowed" in response.content
            refusals = [
                r
                for r in caplog.records
                if r.levelno >= logging.INFO and "refused" in r.getMessage()
            ]
            assert len(refusals) == 1, [r.getMessage() for r in caplog.records]
            assert not [r for r in caplog.records if r.exc_info], "a refusal logged a traceback"
            assert not [r for r in caplog.records if r.name == "django.request"]


def test_the_roles_see_what_their_work_needs(trust):
    seen = {}
    for who in ("responder", "approver", "comms-lead", "administrator", "no-role"):
        page = verified_client(user_make(who, **PEOPLE[who])).get("/").content.decode()
        seen[who] = links_on(page, "Areas")
    assert seen["responder"] == {"/", "/access/", "/drills/", "/comms/", "/trust/keys/"}
    assert "/audit/" in seen["approver"] and "/comms/" not in seen["approver"]
    assert "/audit/" not in seen["responder"] and "/audit/" not in seen["comms-lead"]
    assert {"/audit/", "/admin/", "/comms/"} <= seen["administrator"]
    assert seen["no-role"] == {"/", "/access/", "/drills/", "/trust/keys/"}


def test_only_administrators_see_the_policy_changes_link(trust):
    staff = verified_client(user_make("sam", is_staff=True)).get("/access/").content.decode()
    assert "/access/policy/" not in links_on(staff, "Access")
    admin = user_make("ada", role_names=(roles.ADMINISTRATOR,), is_staff=True)
    page = verified_client(admin).get("/access/").content.decode()
    assert "/access/policy/" in links_on(page, "Access")


def test_the_current_area_is_marked(trust, responder):
    page = verified_client(responder).get("/access/mine/").content.decode()
    assert '<a href="/access/" aria-current="page">Access</a>' in page
    assert '<a href="/access/mine/" aria-current="page">My grants</a>' in page
    assert '<a href="/access/" aria-current="page">Registry</a>' not in page


def test_a_visitor_who_is_not_logged_in_sees_no_navigation(db):
    page = Client().get("/accounts/login/").content.decode()
    assert 'aria-label="Areas"' not in page


# --- In a real server's terminal ---------------------------------------------------------


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_refusal_is_one_line_in_the_servers_terminal(settings):
    rita = user_make("rita", role_names=(roles.RESPONDER,))
    session = verified_client(rita).cookies[settings.SESSION_COOKIE_NAME].value
    cookie = f"{settings.SESSION_COOKIE_NAME}={session}"
    with runserver() as server:
        status, _headers, body = server.get("/audit/", cookie=cookie)
    assert status == 403 and "Not allowed" in body
    lines = [line for line in server.stderr.splitlines() if "/audit/" in line]
    refusals = [line for line in lines if "refused GET /audit/: not_allowed" in line]
    assert len(refusals) == 1, lines
    assert "Traceback" not in server.stderr
    assert "Forbidden" not in server.stderr
