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


def test_the_queues_list_exactly_what_the_per_grant_rules_allow(trust):
    """`grants_awaiting_approval_by` and `grants_review_waiting_for` are the set forms of
    `grant_approve_problem` and `grant_review_problem`: for every person and every grant
    they must agree, or a queue would offer what the service then refuses (or hide what
    someone could do)."""
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from breakglass.access.grants import grant_approve, grant_self_issue
    from breakglass.access.models import Grant
    from breakglass.access.selectors import (
        grant_approve_problem,
        grant_get,
        grant_review_problem,
        grants_awaiting_approval_by,
        grants_review_waiting_for,
    )
    from devkit.factories import user_make
    from tests.breakglass.conftest import path_make

    rita = user_make("rita", role_names=("responder",))
    pat = user_make("pat", role_names=("responder", "approver"))
    alex = user_make("alex", role_names=("approver",))
    bea = user_make("bea", role_names=("approver",))
    ada = user_make("ada", role_names=("administrator",))
    nobody = user_make("oscar")
    sso = path_make(approvals_required=2)
    vpn = path_make("vpn-backup", service="vpn", approvals_required=1)
    vpn.approver_group = user_make("carl", role_names=("network",)).groups.get()
    vpn.save()
    fresh = grant_request(path=sso, requester=rita, reason="x")
    half = grant_request(path=sso, requester=rita, reason="x")
    grant_approve(grant=half, approver=alex)
    own = grant_request(path=sso, requester=pat, reason="x")
    elsewhere = grant_request(path=vpn, requester=pat, reason="x")
    emergency, _ = grant_self_issue(path=sso, requester=rita, reason="x", confirmation="sso-backup")
    pats, _ = grant_self_issue(path=vpn, requester=pat, reason="x", confirmation="vpn-backup")
    with time_machine.travel(timezone.now() - timedelta(hours=2)):
        old = grant_request(path=sso, requester=rita, reason="x")  # expired, not yet swept
    grants = [grant_get(pk=g.pk) for g in (fresh, half, own, elsewhere, emergency, pats, old)]
    assert {g.state for g in grants} == {Grant.State.PENDING, Grant.State.ISSUED}

    for user in (rita, pat, alex, bea, ada, nobody):
        awaiting = set(grants_awaiting_approval_by(user=user))
        reviews = set(grants_review_waiting_for(user=user))
        for grant in grants:
            may_approve = grant_approve_problem(grant=grant, user=user) is None
            assert (grant in awaiting) == may_approve, (user.username, grant.pk)
            may_review = grant.review_open and grant_review_problem(grant=grant, user=user) is None
            assert (grant in reviews) == may_review, (user.username, grant.pk)
    assert set(grants_awaiting_approval_by(user=bea)) == {fresh, half, own}
