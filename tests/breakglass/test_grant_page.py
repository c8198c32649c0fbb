"""A grant's page: a pending request looks again by itself until its credential is there,
shows the approvals so far, and is withdrawn (not "revoked"); breaking the glass asks for
the path's slug and shows every problem with the form at once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from breakglass.access.grants import grant_approve, grant_request
from breakglass.access.models import Grant
from breakglass.audit.models import AuditEvent
from devkit.factories import verified_client

REFRESH = '<meta http-equiv="refresh" content="10">'
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.fixture
def pending(sso_path, responder, approver):
    grant = grant_request(path=sso_path, requester=responder, reason="IdP down")
    grant_approve(grant=grant, approver=approver)
    return grant


def page_of(user, grant, query: str = "") -> str:
    return verified_client(user).get(f"/access/grants/{grant.pk}/{query}").content.decode()


def test_the_requester_sees_the_approvals_so_far_and_the_page_refreshes_itself(pending):
    page = page_of(pending.requester, pending)
    assert REFRESH in page
    assert "1 of 2 approvals: alex-approver" in page
    assert "the page checks again every 10 seconds" in page
    assert "<script" not in page  # CSP: no script; the meta tag needs none


def test_the_refresh_stops_once_the_token_is_there(pending, second_approver):
    grant_approve(grant=pending, approver=second_approver)
    page = page_of(pending.requester, pending)
    assert REFRESH not in page
    assert 'id="credential-text"' in page
    assert "2 of 2 approvals: alex-approver, bea-approver" in page


def test_the_refresh_stops_when_the_request_expired(pending):
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        assert REFRESH not in page_of(pending.requester, pending)


def test_only_the_requester_waits_with_a_refreshing_page(pending, second_approver):
    page = page_of(second_approver, pending)
    assert REFRESH not in page
    assert "<h2>Decline this request</h2>" in page


def test_the_requester_withdraws_on_a_page_that_does_not_reload_under_her(pending):
    page = page_of(pending.requester, pending)
    assert '<a class="button" href="?withdraw=1#withdraw">Withdraw this request</a>' in page
    assert "Revoke" not in page
    page = page_of(pending.requester, pending, "?withdraw=1")
    assert REFRESH not in page
    assert "<h2>Withdraw this request</h2>" in page
    assert '<button type="submit" class="danger">Withdraw</button>' in page
    response = verified_client(pending.requester).post(
        f"/access/grants/{pending.pk}/revoke/", {"reason": "fixed it myself"}, follow=True
    )
    assert "Withdrawn." in response.content.decode()
    assert "<dt>Withdrawn</dt>" in response.content.decode()
    pending.refresh_from_db()
    assert pending.state == Grant.State.REVOKED


def test_an_issued_grant_is_revoked_early(pending, second_approver):
    grant_approve(grant=pending, approver=second_approver)
    page = page_of(pending.requester, pending)
    assert "<h2>Revoke early</h2>" in page
    assert '<button type="submit" class="danger">Revoke</button>' in page


def test_the_request_message_counts_approvals_in_words(sso_path, responder):
    response = verified_client(responder).post(
        "/access/paths/sso-backup/request/",
        {"reason": "IdP down", "lifetime_minutes": 30},
        follow=True,
    )
    assert "It needs 2 approvals;" in response.content.decode()


def test_no_template_says_something_in_parentheses_s():
    offenders = [
        str(path.relative_to(TEMPLATES))
        for path in TEMPLATES.rglob("*.html")
        if "(s)" in path.read_text()
    ]
    assert offenders == []


# --- Breaking the glass --------------------------------------------------------------------


def test_breaking_the_glass_asks_for_the_slug_and_shows_it(sso_path, responder):
    page = verified_client(responder).get("/access/paths/sso-backup/break-glass/").content
    page = page.decode()
    assert "Type the path&#x27;s slug to confirm" in page
    assert "This path&#x27;s slug is sso-backup." in page
    assert '<code id="path-slug">sso-backup</code>' in page
    assert "path&#x27;s name" not in page


def test_every_problem_with_the_form_is_shown_at_once(sso_path, responder):
    response = verified_client(responder).post(
        "/access/paths/sso-backup/break-glass/",
        {"reason": "", "lifetime_minutes": "600", "confirmation": "sso"},
    )
    page = response.content.decode()
    summary = page[
        page.index('id="form-problems"') : page.index("</div>", page.index('id="form-problems"'))
    ]
    assert "A reason is required" in summary
    assert "over this path&#x27;s maximum of 60 minutes" in summary
    assert "type the path&#x27;s slug exactly: sso-backup" in summary
    # ... and each beside its own field.
    assert page.count('class="errorlist"') == 3
    assert not Grant.objects.exists()
    refusal = AuditEvent.objects.get(action="grant.self_issue_refused")
    assert refusal.data["codes"] == [
        "missing_reason",
        "lifetime_over_maximum",
        "confirmation_mismatch",
    ]


def test_a_lifetime_that_is_not_a_number_is_reported_with_the_rest(sso_path, responder):
    page = (
        verified_client(responder)
        .post("/access/paths/sso-backup/request/", {"reason": "", "lifetime_minutes": "soon"})
        .content.decode()
    )
    assert "A reason is required" in page
    assert "The lifetime must be a whole number of minutes." in page
    assert not Grant.objects.exists()
