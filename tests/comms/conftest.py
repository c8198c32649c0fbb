from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from breakglass.access.models import CriticalService, Team
from comms import incidents, subscribers, updates


@pytest.fixture
def team(db):
    return Team.objects.create(name="Platform", slug="platform")


@pytest.fixture
def sso(team):
    return CriticalService.objects.create(
        name="Single sign-on", slug="sso", owning_team=team, tier=1
    )


@pytest.fixture
def vpn(team):
    return CriticalService.objects.create(name="VPN", slug="vpn", owning_team=team, tier=1)


@pytest.fixture
def sev1(commander, comms_lead, sso):
    return incidents.incident_declare(
        title="Logins failing",
        severity=1,
        actor=commander,
        services=[(sso, "major_outage")],
        commander=commander,
        comms_lead=comms_lead,
    )


@pytest.fixture
def published(sev1, comms_lead, commander):
    """A reviewed, published external update on the SEV1."""
    update = updates.status_update_draft(
        incident=sev1,
        audience="external",
        body="We are looking into {{ affected_services }}.",
        actor=comms_lead,
    )
    updates.status_update_review(update=update, reviewer=commander, approve=True)
    return updates.status_update_publish(update=update, actor=comms_lead)


def subscriber_make(email: str, *, services_=(), drill: bool = False):
    sub = subscribers.subscriber_subscribe(email=email, services=services_, drill=drill)
    return subscribers.subscriber_confirm(token=sub.token)


@pytest.fixture
def comms_lead_group(db):
    return Group.objects.get_or_create(name="comms-lead")[0]
