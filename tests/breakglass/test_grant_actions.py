"""grant_actions_for: one answer to "what may this person do with this grant", and the
services refuse exactly what it does not offer."""

import pytest
import time_machine
from django.utils import timezone

from breakglass.access.errors import GrantError
from breakglass.access.grants import grant_approve, grant_request, grant_self_issue
from breakglass.access.lifecycle import grant_review_close, grant_revoke
from breakglass.access.selectors import grant_actions_for, grant_get

PEOPLE = ("responder", "approver", "second_approver", "outsider", "commander", "administrator")


def ask(path, requester):
    return grant_request(path=path, requester=requester, reason="SSO is down", incident_ref="I-1")


def _succeeds(action) -> bool:
    try:
        action()
    except GrantError:
        return False
    return True


@pytest.mark.parametrize("who", PEOPLE)
def test_approve_is_offered_exactly_when_grant_approve_succeeds(request, sso_path, responder, who):
    person = request.getfixturevalue(who)
    grant = grant_get(pk=ask(sso_path, responder).pk)
    offered = grant_actions_for(user=person, grant=grant).approve
    assert offered == _succeeds(lambda: grant_approve(grant=grant, approver=person))
    assert offered == (who in ("approver", "second_approver"))


@pytest.mark.parametrize("who", PEOPLE)
def test_revoke_is_offered_exactly_when_grant_revoke_succeeds(request, sso_path, responder, who):
    person = request.getfixturevalue(who)
    grant = grant_get(pk=ask(sso_path, responder).pk)
    actions = grant_actions_for(user=person, grant=grant)
    assert actions.revoke == actions.see
    assert actions.revoke == _succeeds(lambda: grant_revoke(grant=grant, actor=person, reason="r"))
    assert actions.revoke == (who != "outsider")


@pytest.mark.parametrize("who", PEOPLE)
def test_review_is_offered_exactly_when_grant_review_close_succeeds(
    request, sso_path, responder, who
):
    person = request.getfixturevalue(who)
    grant, _credential = grant_self_issue(
        path=sso_path, requester=responder, reason="down", confirmation=sso_path.slug
    )
    grant = grant_get(pk=grant.pk)
    offered = grant_actions_for(user=person, grant=grant).review
    assert offered == _succeeds(
        lambda: grant_review_close(grant=grant, reviewer=person, notes="ok")
    )
    assert offered == (who in ("approver", "second_approver", "administrator"))


def test_nothing_is_offered_on_a_request_past_its_deadline(sso_path, responder, approver):
    grant = ask(sso_path, responder)
    with time_machine.travel(timezone.now() + timezone.timedelta(hours=1)):
        actions = grant_actions_for(user=approver, grant=grant_get(pk=grant.pk))
        assert not actions.approve
        with pytest.raises(GrantError) as caught:
            grant_approve(grant=grant, approver=approver)
    assert caught.value.code == "request_expired"


def test_an_approver_who_approved_is_not_offered_a_second_approval(sso_path, responder, approver):
    grant = ask(sso_path, responder)
    grant_approve(grant=grant, approver=approver)
    actions = grant_actions_for(user=approver, grant=grant_get(pk=grant.pk))
    assert actions.approved_by_me and not actions.approve


def test_the_approve_page_shows_why_someone_cannot_approve(sso_path, responder, as_user):
    grant = ask(sso_path, responder)
    page = as_user(responder).get(f"/access/grants/{grant.pk}/approve/")
    assert page.status_code == 200
    assert b"You cannot approve your own request." in page.content
    assert b'id="approve-button"' not in page.content
