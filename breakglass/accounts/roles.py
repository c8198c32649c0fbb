"""Console roles, stored as Django groups, and the permissions each one holds.

`ROLE_PERMISSIONS` is the declarative map: entries are `app_label.codename`, where the
codename may end in `*` (`breakglass.view_*` is every view permission of that app),
`app_label.*` is all of an app, and `*` is everything. Permissions that do not exist
(yet) are skipped, so areas can add models later and list them here; `roles_ensure`
runs after every `migrate` and only adds, so permissions an administrator grants by
hand in the Django admin survive.
"""

from __future__ import annotations

RESPONDER = "responder"
APPROVER = "approver"
INCIDENT_COMMANDER = "incident-commander"
COMMS_LEAD = "comms-lead"
DRILL_COORDINATOR = "drill-coordinator"
ADMINISTRATOR = "administrator"

ALL_ROLES = [RESPONDER, APPROVER, INCIDENT_COMMANDER, COMMS_LEAD, DRILL_COORDINATOR, ADMINISTRATOR]

ROLE_LABELS = {
    RESPONDER: "Responder",
    APPROVER: "Approver",
    INCIDENT_COMMANDER: "Incident commander",
    COMMS_LEAD: "Communications lead",
    DRILL_COORDINATOR: "Drill coordinator",
    ADMINISTRATOR: "Administrator",
}

_REGISTRY_VIEW = (
    "breakglass.view_team",
    "breakglass.view_criticalservice",
    "breakglass.view_backuppath",
)

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    # Asks for emergency access and sees what is going on.
    RESPONDER: (
        *_REGISTRY_VIEW,
        "breakglass.view_grant",
        "breakglass.add_grant",
        "comms.view_*",
        "drills.view_*",
    ),
    # Approves (k of n) or refuses other people's grants, revokes, reviews.
    APPROVER: (
        "breakglass.view_*",
        "breakglass.change_grant",
        "breakglass.add_approval",
        "keys.view_revokedcredential",
        "audit.view_auditevent",
    ),
    # Runs the incident: declares it, sees and revokes access granted during it.
    INCIDENT_COMMANDER: (
        "breakglass.view_*",
        "breakglass.change_grant",
        "comms.view_*",
        "comms.add_incident",
        "comms.change_incident",
        "comms.add_affectedservice",
        "comms.change_affectedservice",
        "comms.add_timelineentry",
        "drills.view_*",
        "drills.add_killswitchevent",
        "audit.view_auditevent",
    ),
    # Writes status updates and manages subscribers and the status page.
    COMMS_LEAD: ("comms.*", *_REGISTRY_VIEW),
    # Schedules and runs drills of every backup path.
    DRILL_COORDINATOR: ("drills.*", *_REGISTRY_VIEW, "breakglass.view_grant"),
    ADMINISTRATOR: ("*",),
}


def user_has_role(user, role: str) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name=role).exists()


def permission_matches(pattern: str, app_label: str, codename: str) -> bool:
    if pattern == "*":
        return True
    want_app, _, want_code = pattern.partition(".")
    if want_app != app_label:
        return False
    if want_code.endswith("*"):
        return codename.startswith(want_code[:-1])
    return codename == want_code


def roles_ensure(*, apps=None, using: str = "default") -> None:
    """Create the role groups and give them the permissions in ROLE_PERMISSIONS. Idempotent.

    `apps` is the app registry to use (post_migrate passes the migrated state).
    """
    if apps is None:
        from django.apps import apps
    try:
        Group = apps.get_model("auth", "Group")
        Permission = apps.get_model("auth", "Permission")
        User = apps.get_model("auth", "User")
    except LookupError:  # auth is not migrated (yet) in this database
        return
    permissions = list(
        Permission.objects.using(using).values_list("id", "content_type__app_label", "codename")
    )
    for role in ALL_ROLES:
        group, _ = Group.objects.using(using).get_or_create(name=role)
        wanted = [
            pk
            for pk, app_label, codename in permissions
            if any(permission_matches(p, app_label, codename) for p in ROLE_PERMISSIONS[role])
        ]
        group.permissions.add(*wanted)
    # Administrators use the Django admin, which needs is_staff.
    User.objects.using(using).filter(groups__name=ADMINISTRATOR, is_staff=False).update(
        is_staff=True
    )
