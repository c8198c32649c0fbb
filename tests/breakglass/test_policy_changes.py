"""The two-person rule on path policy: one administrator cannot weaken a path alone.

Tests go through the real console views and the real Django admin, as ada (proposes)
and ben (the second administrator)."""

import time

import pytest

from breakglass.access.models import BackupPath, PolicyChange
from breakglass.access.policy import path_policy, policy_weakenings
from breakglass.accounts import roles
from breakglass.accounts.decorators import SUDO_SESSION_KEY
from breakglass.audit.models import AuditEvent
from breakglass.outbox.models import OutboxMessage
from devkit.factories import user_make
from tests.breakglass.conftest import path_make
from tests.conftest import verified_client


@pytest.fixture
def ben(db):
    return user_make(
        "ben-admin", role_names=(roles.ADMINISTRATOR,), is_staff=True, email="ben@example.test"
    )


@pytest.fixture
def sso(trust):
    """2 approvals, no self-issue, scopes read/admin, at most 60 minutes."""
    return path_make("sso-break-glass", approvals_required=2, allow_self_issue=False)


def _propose(client, **fields):
    data = {"path": "sso-break-glass", "reason": "INC-7 review", **fields}
    return client.post("/access/policy/", data)


def _events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


# --- what counts as weakening ------------------------------------------------------------


def test_each_kind_of_weakening_is_named(sso):
    before = path_policy(path=sso)
    weaker = {
        **before,
        "approvals_required": 1,
        "allow_self_issue": True,
        "responder_group": "everyone",
        "approver_group": "interns",
        "max_lifetime_minutes": 600,
        "scopes": ["admin", "read", "write"],
        "ssh_principals": ["root"],
        "ssh_source_addresses": [],
        "ssh_force_command": "",
    }
    assert policy_weakenings(before=before, after=weaker) == [
        "approvals required 2 -> 1",
        "emergency self-issue turned on",
        "responder group responder -> everyone",
        "approver group approver -> interns",
        "longest lifetime 60 -> 600 minutes",
        "new scopes: write",
        "new SSH principals: root",
    ]


def test_lifting_an_ssh_restriction_is_weakening(sso):
    before = {
        **path_policy(path=sso),
        "ssh_source_addresses": ["10.0.0.0/8"],
        "ssh_force_command": "/usr/local/bin/repair",
    }
    after = {**before, "ssh_source_addresses": [], "ssh_force_command": ""}
    assert policy_weakenings(before=before, after=after) == [
        "SSH source addresses 10.0.0.0/8 -> anywhere",
        "forced command '/usr/local/bin/repair' -> 'none (a shell)'",
    ]
    assert policy_weakenings(before=after, after=before) == []  # adding them strengthens


def test_strengthening_is_not_weakening(sso):
    before = path_policy(path=sso)
    stronger = {**before, "approvals_required": 3, "max_lifetime_minutes": 30, "scopes": ["read"]}
    assert policy_weakenings(before=before, after=stronger) == []
    assert policy_weakenings(before={**before, "is_active": False}, after=before) == [
        "path re-activated"
    ]


# --- through the console ------------------------------------------------------------------


def test_a_strengthening_change_applies_at_once(sso, administrator):
    response = _propose(verified_client(administrator), approvals_required=3)
    assert response.status_code == 302
    sso.refresh_from_db()
    assert sso.approvals_required == 3
    [event] = _events("path.policy_changed")
    assert event.actor_label == "ada-admin"
    assert (
        event.data["before"]["approvals_required"],
        event.data["after"]["approvals_required"],
    ) == (2, 3)


def test_a_weakening_change_waits_for_a_second_administrator(sso, administrator, ben):
    response = _propose(verified_client(administrator), approvals_required=1, allow_self_issue="on")
    assert response.status_code == 302
    sso.refresh_from_db()
    assert (sso.approvals_required, sso.allow_self_issue) == (2, False)  # nothing yet
    change = PolicyChange.objects.get()
    assert change.state == "pending"
    assert change.weakens == ["approvals required 2 -> 1", "emergency self-issue turned on"]
    [proposed] = _events("path.policy_change_proposed")
    assert proposed.data["weakens"] == change.weakens
    # The other administrator is told; the proposer is not asked to approve themselves.
    assert [
        m.recipient
        for m in OutboxMessage.objects.filter(source__startswith="breakglass.policychange")
    ] == ["ben@example.test"]
    page = verified_client(ben).get("/access/policy/").content.decode()
    assert "approvals required 2 -&gt; 1" in page


def test_the_proposer_cannot_approve_their_own_weakening(sso, administrator):
    client = verified_client(administrator)
    _propose(client, approvals_required=1)
    change = PolicyChange.objects.get()
    page = client.get(f"/access/policy/{change.pk}/approve/").content.decode()
    assert 'id="approve-policy"' not in page
    response = client.post(f"/access/policy/{change.pk}/approve/", follow=True)
    assert "another administrator must approve it" in response.content.decode()
    sso.refresh_from_db()
    assert sso.approvals_required == 2
    assert PolicyChange.objects.get().state == "pending"
    assert _events("path.policy_self_approval_refused")[0].actor_label == "ada-admin"


def test_a_second_administrator_approves_with_a_fresh_otp(sso, administrator, ben):
    _propose(verified_client(administrator), approvals_required=1)
    change = PolicyChange.objects.get()
    stale = verified_client(ben)
    session = stale.session
    session[SUDO_SESSION_KEY] = time.time() - 3600  # an OTP from an hour ago
    session.save()
    response = stale.post(f"/access/policy/{change.pk}/approve/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/sudo/")
    sso.refresh_from_db()
    assert sso.approvals_required == 2

    response = verified_client(ben).post(f"/access/policy/{change.pk}/approve/")
    assert response.status_code == 302
    sso.refresh_from_db()
    assert sso.approvals_required == 1
    change.refresh_from_db()
    assert (change.state, change.decided_by) == ("applied", ben)
    [applied] = _events("path.policy_changed")
    assert (applied.actor_label, applied.data["proposed_by"], applied.data["approved_by"]) == (
        "ben-admin",
        "ada-admin",
        "ben-admin",
    )


def test_a_change_proposed_before_another_is_not_applied_over_it(sso, administrator, ben):
    _propose(verified_client(administrator), approvals_required=1)
    change = PolicyChange.objects.get()
    _propose(verified_client(ben), approvals_required=4)  # strengthening: applied at once
    response = verified_client(ben).post(f"/access/policy/{change.pk}/approve/", follow=True)
    assert "changed after this was proposed" in response.content.decode()
    sso.refresh_from_db()
    assert sso.approvals_required == 4
    change.refresh_from_db()
    assert change.state == "stale"


def test_a_change_can_be_rejected_or_withdrawn(sso, administrator, ben):
    _propose(verified_client(administrator), allow_self_issue="on")
    change = PolicyChange.objects.get()
    verified_client(administrator).post(
        f"/access/policy/{change.pk}/approve/", {"reject": "1", "note": "typo"}
    )
    change.refresh_from_db()
    assert change.state == "rejected"
    assert _events("path.policy_change_rejected")[0].data["note"] == "typo"
    response = verified_client(ben).post(f"/access/policy/{change.pk}/approve/", follow=True)
    assert "already rejected" in response.content.decode()
    sso.refresh_from_db()
    assert sso.allow_self_issue is False


def test_people_who_are_not_administrators_are_refused(sso, approver, responder):
    for person in (approver, responder):
        assert verified_client(person).get("/access/policy/").status_code == 403
        assert _propose(verified_client(person), approvals_required=1).status_code == 403
    sso.refresh_from_db()
    assert sso.approvals_required == 2


def test_a_bad_value_is_a_clear_error_and_changes_nothing(sso, administrator):
    response = _propose(verified_client(administrator), responder_group="nobody")
    assert "There is no group &#x27;nobody&#x27;." in response.content.decode()
    assert not PolicyChange.objects.exists()


def test_a_change_creating_a_weaker_sibling_is_refused_when_the_deployment_says_error(
    sso, administrator, ben, settings
):
    settings.BREAKGLASS_WEAKER_SIBLING = "error"
    chat = path_make(
        "sso-admin-via-chat", scopes=("admin",), approvals_required=2, allow_self_issue=False
    )
    response = verified_client(administrator).post(
        "/access/policy/",
        {"path": chat.slug, "reason": "chat ops", "approvals_required": 1},
    )
    assert "sso-admin-via-chat reaches aud=sso scope=admin with 1 approval instead of 2" in (
        response.content.decode()
    )
    assert not PolicyChange.objects.exists()
    assert _events("path.policy_change_refused")[0].data["weaker_siblings"]


# --- the Django admin no longer edits policy -------------------------------------------------


def test_the_admin_cannot_edit_a_paths_policy(sso, administrator):
    client = verified_client(administrator)
    page = client.get(f"/admin/breakglass/backuppath/{sso.pk}/change/").content.decode()
    for field in ("approvals_required", "allow_self_issue", "responder_group", "scopes"):
        assert f'name="{field}"' not in page
    assert 'name="description"' in page  # descriptive fields stay editable
    response = client.post(
        f"/admin/breakglass/backuppath/{sso.pk}/change/",
        {
            "name": sso.name,
            "description": "edited",
            "request_ttl_minutes": 30,
            "ssh_login": "breakglass",
            "probe_ssh_port": 22,
            "approvals_required": 1,  # read-only: ignored
            "allow_self_issue": "on",
        },
    )
    assert response.status_code == 302
    sso.refresh_from_db()
    assert (sso.description, sso.approvals_required, sso.allow_self_issue) == ("edited", 2, False)
    assert _events("admin.changed")[-1].actor_label == "ada-admin"
    assert (
        client.post(f"/admin/breakglass/backuppath/{sso.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )


def test_a_shared_ssh_ca_is_refused_as_a_policy_change(trust, administrator):
    bastion = path_make("bastion-ssh", method="ssh-certificate")
    database = path_make("database-admin-ssh", service="db", method="ssh-certificate")
    response = verified_client(administrator).post(
        "/access/policy/",
        {"path": database.slug, "reason": "share", "ssh_ca": bastion.ssh_ca.kid},
    )
    assert "each SSH path needs its own CA" in response.content.decode()
    database.refresh_from_db()
    assert database.ssh_ca_id != bastion.ssh_ca_id
    assert not PolicyChange.objects.exists()


def test_a_path_added_in_the_admin_starts_inactive(sso, administrator):
    client = verified_client(administrator)
    response = client.post(
        "/admin/breakglass/backuppath/add/",
        {
            "service": sso.service.pk,
            "name": "SSO by chat",
            "slug": "sso-chat",
            "method": "signed-token",
            "scopes": '["admin"]',
            "max_lifetime_minutes": 60,
            "approvals_required": 1,
            "approver_group": sso.approver_group.pk,
            "responder_group": sso.responder_group.pk,
            "allow_self_issue": "on",
            "request_ttl_minutes": 30,
            "ssh_principals": "[]",
            "ssh_source_addresses": "[]",
            "ssh_login": "breakglass",
            "probe_ssh_port": 22,
        },
    )
    errors = response.context["adminform"].form.errors if response.status_code == 200 else {}
    assert response.status_code == 302, errors
    added = BackupPath.objects.get(slug="sso-chat")
    assert added.is_active is False
    assert _events("admin.added")[0].object_id == str(added.pk)
