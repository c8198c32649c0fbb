"""The console's landing page: where to go in each area, and the state of your account.

It reads only accounts data, so it keeps working whatever state the other areas'
models are in; an area can add a card by appending to `AREAS` or to the template.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.shortcuts import render

from breakglass.accounts import roles, selectors
from breakglass.accounts.decorators import sudo_is_fresh
from breakglass.accounts.views import LOW_BACKUP_CODES


@dataclass(frozen=True)
class Area:
    title: str
    url: str
    summary: str
    # Roles for which this area is where the work is; highlights the card.
    roles: tuple[str, ...] = ()


AREAS = [
    Area(
        "Access",
        "/access/",
        "Critical services, their backup paths, and emergency grants: request, approve, "
        "break glass, revoke, review.",
        (roles.RESPONDER, roles.APPROVER, roles.INCIDENT_COMMANDER),
    ),
    Area(
        "Drills",
        "/drills/",
        "Scheduled drills that prove every backup path still works end to end.",
        (roles.DRILL_COORDINATOR,),
    ),
    Area(
        "Comms",
        "/comms/",
        "Incidents, status updates, subscribers and the public status page.",
        (roles.INCIDENT_COMMANDER, roles.COMMS_LEAD),
    ),
    Area(
        "Audit",
        "/audit/",
        "The tamper-evident log of everything that happened, and its chain check.",
        (roles.APPROVER, roles.ADMINISTRATOR),
    ),
]


def home(request):
    user = request.user
    held = selectors.roles_of(user=user)
    remaining = selectors.backup_codes_remaining(user=user)
    cards = [{"area": area, "yours": bool(set(area.roles) & set(held))} for area in AREAS]
    context = {
        "cards": cards,
        "role_labels": [roles.ROLE_LABELS[role] for role in held],
        "backup_remaining": remaining,
        "backup_low": remaining <= LOW_BACKUP_CODES,
        "sudo_fresh": sudo_is_fresh(request),
    }
    return render(request, "console/home.html", context)
