"""The overview is "what needs me now": per person, only the sections that have something."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from breakglass.access.grants import grant_request
from breakglass.accounts import roles
from devkit.factories import user_make, verified_client
from drills.killswitch import killswitch_engage
from tests.breakglass.conftest import path_make
from tests.project.world import world_make

SECTIONS = ("approvals-waiting", "my-access", "reviews", "incidents", "drills-waiting")


@pytest.fixture
def world(trust):
    return world_make()


def sections_of(html: str) -> set[str]:
    return {name for name in SECTIONS if f'id="{name}"' in html}


def overview(user) -> str:
    response = verified_client(user).get("/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_responder_sees_her_access_her_review_and_her_drill(world):
    page = overview(world.rita)
    assert sections_of(page) == {"my-access", "reviews", "drills-waiting"}
    # The live emergency grant with its time left, and the request with its approvals.
    assert '<code>dns-emergency</code></a> <span class="badge ok">live</span>' in page
    assert "44\xa0minutes left" in page or "45\xa0minutes left" in page
    assert "1 of 2 approvals: alex" in page
    assert "Your emergency access on <code>dns-emergency</code>" in page
    assert f'href="/drills/runs/{world.drill_run.pk}/participate/"' in page
    assert "Nothing needs you right now" not in page


def test_an_approver_sees_what_waits_for_his_approval_with_its_age(world):
    with time_machine.travel(timezone.now() + timedelta(minutes=12)):
        page = overview(world.bea)
    assert sections_of(page) == {"approvals-waiting", "reviews"}
    assert "<strong>rita</strong> on <code>sso-backup</code> for INC-2026-0042" in page
    assert "waiting 12\xa0minutes" in page
    assert 'href="/access/approvals/"' in page
    assert "Review rita on <code>dns-emergency</code>" in page


def test_a_request_someone_already_approved_no_longer_waits_for_them(world):
    page = overview(world.alex)
    assert "approvals-waiting" not in sections_of(page)
    assert "reviews" in sections_of(page)  # alex may still close rita's review


def test_the_commander_and_the_comms_lead_see_their_incident_and_the_next_update(world):
    for person, role in ((world.ines, "incident commander"), (world.cody, "communications lead")):
        page = overview(person)
        assert "incidents" in sections_of(page)
        assert f'href="/comms/incidents/{world.incident.reference}/"' in page
        assert f"You are {role}" in page
        assert "Next external update due <strong>" in page


def test_an_overdue_update_is_shown_late(world):
    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        page = overview(world.cody)
    assert 'class="due late"' in page
    assert "Next external update <strong>overdue</strong>" in page


def test_the_drill_owner_sees_a_drill_waiting_for_sign_off(trust, coordinator):
    from drills.definitions import drill_create

    drill_create(
        name="Monthly SSO",
        owner=coordinator,
        paths=[path_make()],
        requires_signoff=True,
    )
    page = overview(coordinator)
    assert sections_of(page) == {"drills-waiting"}
    assert "needs your sign-off" in page


def test_someone_with_nothing_to_do_is_told_so(world, outsider):
    page = overview(outsider)
    assert sections_of(page) == set()
    assert "Nothing needs you right now" in page
    assert "Drills kill switch off" in page


def test_the_kill_switch_when_engaged_is_shown_to_everyone(world, outsider):
    killswitch_engage(actor=world.dana, reason="DNS work tonight")
    page = overview(outsider)
    assert 'class="alert" id="killswitch"' in page
    assert "DNS work tonight" in page


def test_the_overview_takes_the_same_number_of_queries_for_one_request_or_forty(
    trust, django_assert_max_num_queries
):
    alex = user_make("alex", role_names=(roles.APPROVER,))
    path = path_make(approvals_required=2)
    path_make("dns-emergency", service="dns", allow_self_issue=True)
    client = verified_client(alex)

    def count() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            assert client.get("/").status_code == 200
        return len(queries)

    requester = user_make("rita0", role_names=(roles.RESPONDER,))
    grant_request(path=path, requester=requester, reason="down")
    few = count()
    for n in range(1, 40):
        responder = user_make(f"rita{n}", role_names=(roles.RESPONDER,))
        grant_request(path=path, requester=responder, reason="down")
    assert count() == few
    with django_assert_max_num_queries(40):
        client.get("/")
