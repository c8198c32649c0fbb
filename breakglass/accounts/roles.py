"""Console roles, stored as Django groups. Later apps grant permissions to these."""

RESPONDER = "responder"
APPROVER = "approver"
INCIDENT_COMMANDER = "incident-commander"
COMMS_LEAD = "comms-lead"
DRILL_COORDINATOR = "drill-coordinator"
ADMINISTRATOR = "administrator"

ALL_ROLES = [RESPONDER, APPROVER, INCIDENT_COMMANDER, COMMS_LEAD, DRILL_COORDINATOR, ADMINISTRATOR]


def user_has_role(user, role: str) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name=role).exists()
