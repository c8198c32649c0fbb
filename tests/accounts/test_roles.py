"""Roles are groups created after migrate, with permissions from a declarative map."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType

from breakglass.accounts import roles
from breakglass.accounts.roles import ROLE_PERMISSIONS, permission_matches, roles_ensure
from breakglass.accounts.services import AccountError, role_assign, role_remove
from breakglass.audit.models import AuditEvent
from devkit.factories import user_make


def codenames(role: str) -> set[str]:
    return {
        f"{app}.{code}"
        for app, code in Group.objects.get(name=role).permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def test_every_role_exists_after_migrate(db):
    assert set(Group.objects.values_list("name", flat=True)) >= set(roles.ALL_ROLES)


def test_every_role_has_an_entry_in_the_permission_map():
    assert set(ROLE_PERMISSIONS) == set(roles.ALL_ROLES)


def test_approvers_can_see_and_approve_grants_but_not_edit_the_registry(db):
    perms = codenames(roles.APPROVER)
    assert {"breakglass.view_grant", "breakglass.change_grant", "breakglass.add_approval"} <= perms
    assert "breakglass.change_criticalservice" not in perms
    assert "audit.view_auditevent" in perms


def test_responders_can_request_grants_but_not_approve_them(db):
    perms = codenames(roles.RESPONDER)
    assert {"breakglass.add_grant", "breakglass.view_backuppath"} <= perms
    assert "breakglass.add_approval" not in perms
    assert "breakglass.change_grant" not in perms


def test_administrators_hold_every_permission(db):
    assert codenames(roles.ADMINISTRATOR) == {
        f"{app}.{code}"
        for app, code in Permission.objects.values_list("content_type__app_label", "codename")
    }


def test_running_it_again_changes_nothing(db):
    before = {role: codenames(role) for role in roles.ALL_ROLES}
    roles_ensure()
    roles_ensure()
    assert Group.objects.filter(name__in=roles.ALL_ROLES).count() == len(roles.ALL_ROLES)
    assert {role: codenames(role) for role in roles.ALL_ROLES} == before


def test_permissions_of_models_added_later_are_picked_up(db):
    later = ContentType.objects.create(app_label="drills", model="laterthing")
    Permission.objects.create(codename="run_laterthing", name="Run", content_type=later)
    roles_ensure()
    assert "drills.run_laterthing" in codenames(roles.DRILL_COORDINATOR)
    assert "drills.run_laterthing" not in codenames(roles.COMMS_LEAD)


def test_permissions_granted_by_hand_survive(db):
    extra = Permission.objects.get(codename="view_user")
    Group.objects.get(name=roles.RESPONDER).permissions.add(extra)
    roles_ensure()
    assert "auth.view_user" in codenames(roles.RESPONDER)


@pytest.mark.parametrize(
    "pattern, app, code, expected",
    [
        ("*", "auth", "add_user", True),
        ("comms.*", "comms", "add_incident", True),
        ("comms.*", "drills", "add_drill", False),
        ("breakglass.view_*", "breakglass", "view_grant", True),
        ("breakglass.view_*", "breakglass", "change_grant", False),
        ("breakglass.add_grant", "breakglass", "add_grant", True),
        ("breakglass.add_grant", "breakglass", "add_grants", False),
    ],
)
def test_permission_patterns(pattern, app, code, expected):
    assert permission_matches(pattern, app, code) is expected


def test_assigning_the_administrator_role_makes_the_user_staff(db):
    ada = user_make("ada")
    role_assign(user=ada, role=roles.ADMINISTRATOR)
    ada.refresh_from_db()
    assert ada.is_staff
    assert roles.user_has_role(ada, roles.ADMINISTRATOR)
    assert AuditEvent.objects.get(action="auth.role_assigned").data == {"role": "administrator"}
    role_remove(user=ada, role=roles.ADMINISTRATOR)
    ada.refresh_from_db()
    assert not ada.is_staff


def test_members_of_the_administrator_group_become_staff_on_migrate(db):
    ada = user_make("ada", role_names=(roles.ADMINISTRATOR,))
    assert not ada.is_staff
    roles_ensure()
    ada.refresh_from_db()
    assert ada.is_staff


def test_an_unknown_role_is_refused(db):
    with pytest.raises(AccountError, match="Unknown role 'root'"):
        role_assign(user=user_make("x"), role="root")
