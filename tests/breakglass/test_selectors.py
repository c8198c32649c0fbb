"""Who may see a grant: one rule for the console and the API."""

from breakglass.access.grants import grant_request
from breakglass.access.selectors import grant_visible_to


def test_a_grant_is_visible_to_its_requester_approvers_commanders_and_admins(
    sso_path, responder, approver, commander, administrator, outsider
):
    grant = grant_request(path=sso_path, requester=responder, reason="x")
    for user in (responder, approver, commander, administrator):
        assert grant_visible_to(grant=grant, user=user), user.username
    assert not grant_visible_to(grant=grant, user=outsider)
