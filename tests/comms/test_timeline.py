from datetime import timedelta

from django.contrib.auth.models import Group
from django.utils import timezone

from breakglass.access.models import BackupPath, Grant
from comms import incidents, selectors


def test_timeline_merges_updates_roles_notes_and_grants_for_the_incident(
    published, commander, responder, sso
):
    incidents.incident_note_add(
        incident=published.incident, body="looking at logs", actor=commander
    )
    group = Group.objects.get_or_create(name="approver")[0]
    path = BackupPath.objects.create(
        service=sso,
        name="Root",
        slug="sso-root",
        approver_group=group,
        responder_group=group,
        scopes=["admin"],
    )
    now = timezone.now()
    common = dict(
        path=path,
        requester=responder,
        reason="fix",
        scopes=["admin"],
        lifetime_minutes=15,
        request_expires_at=now + timedelta(minutes=30),
    )
    Grant.objects.create(incident_ref=published.incident.reference, jti="a", **common)
    Grant.objects.create(incident_ref="INC-1999-0001", jti="b", **common)

    timeline = selectors.incident_timeline(incident=published.incident)
    kinds = [item.kind for item in timeline]
    assert {"declared", "role", "review", "update", "note", "grant"} <= set(kinds)
    assert kinds.count("grant") == 1
    assert all(item.internal for item in timeline if item.kind in ("note", "grant", "role"))
    assert [item.at for item in timeline] == sorted(item.at for item in timeline)

    public = selectors.incident_timeline(incident=published.incident, public=True)
    assert [item.kind for item in public] == ["update"]
