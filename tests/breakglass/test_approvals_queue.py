"""The approvals queue: who, which path, why, the incident, how long it has waited, and
Approve / Decline right there, as plain forms (no JavaScript), with the fresh code beside
the button when the session has none."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from breakglass.access.grants import grant_approve, grant_request
from breakglass.access.models import Grant
from breakglass.audit.models import AuditEvent
from devkit.factories import totp_now, user_make, verified_client
from tests.breakglass.conftest import path_make


@pytest.fixture
def waiting(sso_path, responder):
    return grant_request(
        path=sso_path,
        requester=responder,
        reason="SSO admin console returns 500 for everyone",
        incident_ref="INC-2026-0042",
        lifetime_minutes=30,
    )


def test_each_request_shows_who_what_why_the_incident_and_how_long_it_waited(waiting, approver):
    with time_machine.travel(timezone.now() + timedelta(minutes=9)):
        page = verified_client(approver).get("/access/approvals/").content.decode()
    card = page[page.index(f'id="request-{waiting.pk}"') :]
    assert (
        'Rita <span class="hint">(rita-responder)</span> asks for <code>sso-backup</code>' in card
    )
    assert "SSO admin console returns 500 for everyone" in card
    assert "<strong>INC-2026-0042</strong>" in card
    assert "<strong>9\xa0minutes</strong>" in card
    assert "0 of 2 approvals" in card
    assert f'action="/access/grants/{waiting.pk}/approve/"' in card
    assert f'action="/access/grants/{waiting.pk}/revoke/"' in card
    assert card.count("csrfmiddlewaretoken") == 2
    assert "<script" not in page


def test_a_fresh_session_approves_with_one_press_and_comes_back_to_the_queue(waiting, approver):
    client = verified_client(approver)
    page = client.get("/access/approvals/").content.decode()
    assert 'name="sudo_otp"' not in page  # the session's code is fresh: no field
    response = client.post(
        f"/access/grants/{waiting.pk}/approve/", {"next": "/access/approvals/"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/access/approvals/"
    assert "Approved. 1 more approval needed." in response.content.decode()
    assert waiting.approvals.get().approver == approver
    # Approved by me: it no longer waits for me.
    assert f'id="request-{waiting.pk}"' not in response.content.decode()


def test_a_stale_session_types_the_fresh_code_beside_the_button(waiting, approver):
    client = verified_client(approver, sudo=False)
    page = client.get("/access/approvals/").content.decode()
    assert 'name="sudo_otp" required inputmode="numeric" autocomplete="one-time-code"' in page
    response = client.post(
        f"/access/grants/{waiting.pk}/approve/",
        {"next": "/access/approvals/", "sudo_otp": totp_now(approver)},
        follow=True,
    )
    assert "Approved. 1 more approval needed." in response.content.decode()
    assert waiting.approvals.filter(approver=approver).exists()
    # The code started the sudo window, as the sudo page would have.
    assert 'name="sudo_otp"' not in client.get("/access/approvals/").content.decode()


def test_a_wrong_code_beside_the_button_approves_nothing_and_says_why(waiting, approver):
    client = verified_client(approver, sudo=False)
    response = client.post(
        f"/access/grants/{waiting.pk}/approve/",
        {"next": "/access/approvals/", "sudo_otp": "000000"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/access/approvals/"
    assert "Nothing was done: That code is not valid." in response.content.decode()
    assert not waiting.approvals.exists()


def test_without_a_code_a_stale_session_still_goes_to_the_sudo_page(waiting, approver):
    response = verified_client(approver, sudo=False).post(
        f"/access/grants/{waiting.pk}/approve/", {"next": "/access/approvals/"}
    )
    assert "/accounts/sudo/" in response["Location"]
    assert not waiting.approvals.exists()


def test_the_last_approval_is_announced_and_issues_the_credential(
    waiting, approver, second_approver
):
    grant_approve(grant=waiting, approver=approver)
    page = verified_client(second_approver).get("/access/approvals/").content.decode()
    assert "1 of 2 approvals: alex-approver" in page
    assert "Yours is the last approval needed" in page
    verified_client(second_approver).post(
        f"/access/grants/{waiting.pk}/approve/", {"next": "/access/approvals/"}
    )
    waiting.refresh_from_db()
    assert waiting.state == Grant.State.ISSUED


def test_declining_needs_a_reason_and_ends_the_request(waiting, approver):
    client = verified_client(approver)
    response = client.post(
        f"/access/grants/{waiting.pk}/revoke/", {"next": "/access/approvals/"}, follow=True
    )
    assert "A reason is required" in response.content.decode()
    waiting.refresh_from_db()
    assert waiting.state == Grant.State.PENDING

    response = client.post(
        f"/access/grants/{waiting.pk}/revoke/",
        {"next": "/access/approvals/", "reason": "Use the VPN path instead"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/access/approvals/"
    assert "Declined." in response.content.decode()
    waiting.refresh_from_db()
    assert (waiting.state, waiting.revoked_by) == (Grant.State.REVOKED, approver)
    assert AuditEvent.objects.get(action="grant.revoked").data["reason"] == (
        "Use the VPN path instead"
    )
    # The requester sees it was declined, by whom and why.
    page = verified_client(waiting.requester).get(f"/access/grants/{waiting.pk}/").content
    assert b"<dt>Declined</dt>" in page and b"Use the VPN path instead" in page


def test_ones_own_request_is_never_offered_for_approval(trust):
    both = user_make("pat-both", role_names=("responder", "approver"))
    grant = grant_request(path=path_make(), requester=both, reason="x")
    page = verified_client(both).get("/access/approvals/").content.decode()
    assert f'id="request-{grant.pk}"' not in page
    assert "Nothing is waiting for you." in page


def test_expired_requests_and_other_paths_are_not_in_the_queue(waiting, approver, responder):
    other = path_make("vpn-backup", service="vpn")
    other.approver_group = user_make("carl", role_names=("network-approvers",)).groups.get()
    other.save()
    grant_request(path=other, requester=responder, reason="VPN down")
    client = verified_client(approver)
    page = client.get("/access/approvals/").content.decode()
    assert page.count('<article class="card request"') == 1
    assert f'id="request-{waiting.pk}"' in page
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        page = client.get("/access/approvals/").content.decode()
    assert "Nothing is waiting for you." in page


def test_a_next_address_off_the_site_is_ignored(waiting, approver):
    response = verified_client(approver).post(
        f"/access/grants/{waiting.pk}/approve/", {"next": "https://evil.example/"}
    )
    assert response["Location"] == f"/access/grants/{waiting.pk}/"


def test_a_role_that_needs_a_passkey_is_offered_no_code_field_and_a_code_does_nothing(
    waiting, approver, settings
):
    settings.BREAKGLASS_PASSKEY_REQUIRED_ROLES = ["approver"]
    client = verified_client(approver, sudo=False)
    page = client.get("/access/approvals/").content.decode()
    assert 'name="sudo_otp"' not in page
    assert "confirm with your passkey or security key first" in page
    response = client.post(
        f"/access/grants/{waiting.pk}/approve/",
        {"next": "/access/approvals/", "sudo_otp": totp_now(approver)},
        follow=True,
    )
    assert "Nothing was done: Your role requires a passkey" in response.content.decode()
    assert not waiting.approvals.exists()
