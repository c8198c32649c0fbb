"""The console's landing page: what needs this person now.

Requests waiting for their approval, their own requests and live grants, post-use
reviews, incidents where they hold a role with the next update's due time, drills
waiting for them, and the drills kill switch. Each list is read by its area's selector
(the one home of that query and its rule); this module only gathers them, each with a
bounded number of queries whatever the number of grants (tests/project/test_overview.py).
A section with nothing in it is not shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from django.shortcuts import render
from django.utils import timezone

from breakglass.access import selectors as access
from breakglass.accounts import roles, selectors
from breakglass.accounts.decorators import sudo_is_fresh
from breakglass.accounts.views import LOW_BACKUP_CODES
from comms.selectors import incident_cadence, incidents_for_console
from drills.selectors import (
    drill_participations_waiting,
    drills_signoff_waiting_for,
    killswitch_state,
)

# Each list shows at most this many rows and links to its full page for the rest: the
# overview is for the next few things to do, and stays cheap however long a queue gets.
SHOWN = 8
# Incidents are read one cadence at a time (comms.selectors.incident_cadence): a person
# holds a role in a handful at once, never more than this.
INCIDENTS_SHOWN = 5


@dataclass(frozen=True)
class Rows:
    """The first rows of a list, and whether it has more than those."""

    rows: list = field(default_factory=list)
    more: bool = False

    @classmethod
    def first(cls, queryset, limit: int = SHOWN) -> Rows:
        rows = list(queryset[: limit + 1])
        return cls(rows[:limit], len(rows) > limit)

    def __bool__(self) -> bool:
        return bool(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class IncidentRole:
    incident: object
    roles: list[str]
    cadence: dict


@dataclass(frozen=True)
class Overview:
    approvals: Rows
    waiting: Rows
    live: Rows
    reviews_to_close: Rows
    under_review: Rows
    incidents: list[IncidentRole]
    invitations: Rows
    signoffs: Rows
    killswitch_engaged: bool
    killswitch_why: str

    @property
    def nothing_to_do(self) -> bool:
        return not any(
            (
                self.approvals,
                self.waiting,
                self.live,
                self.reviews_to_close,
                self.under_review,
                self.incidents,
                self.invitations,
                self.signoffs,
            )
        )


def incidents_with_role(*, user, now: datetime) -> list[IncidentRole]:
    """Open incidents where this person is the commander or the communications lead, the
    most severe first, each with its cadence clock (comms.selectors.incident_cadence)."""
    incidents = (
        incidents_for_console(include_resolved=False)
        .filter(Q(commander=user) | Q(comms_lead=user))
        .order_by("severity", "-declared_at")[:INCIDENTS_SHOWN]
    )
    found = []
    for incident in incidents:
        held = []
        if incident.commander_id == user.pk:
            held.append("incident commander")
        if incident.comms_lead_id == user.pk:
            held.append("communications lead")
        found.append(IncidentRole(incident, held, incident_cadence(incident=incident, now=now)))
    return found


def overview_for(*, user, now: datetime | None = None) -> Overview:
    now = now or timezone.now()
    engaged, why = killswitch_state()
    return Overview(
        approvals=Rows.first(access.grants_awaiting_approval_by(user=user, now=now)),
        waiting=Rows.first(access.grants_waiting_of(user=user, now=now)),
        live=Rows.first(access.grants_live_of(user=user, now=now)),
        reviews_to_close=Rows.first(access.grants_review_waiting_for(user=user)),
        under_review=Rows.first(access.grants_under_review_of(user=user)),
        incidents=incidents_with_role(user=user, now=now),
        invitations=Rows.first(drill_participations_waiting(user=user)),
        signoffs=Rows.first(drills_signoff_waiting_for(user=user)),
        killswitch_engaged=engaged,
        killswitch_why=why,
    )


def home(request):
    user = request.user
    held = selectors.roles_of(user=user)
    remaining = selectors.backup_codes_remaining(user=user)
    context = {
        "overview": overview_for(user=user),
        "role_labels": [roles.ROLE_LABELS[role] for role in held],
        "backup_remaining": remaining,
        "backup_low": remaining <= LOW_BACKUP_CODES,
        "sudo_fresh": sudo_is_fresh(request),
    }
    return render(request, "console/home.html", context)
