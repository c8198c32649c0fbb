import io

from breakglass.access.models import CriticalService, Team
from comms.models import Incident, Maintenance, StatusUpdate, Subscriber, UpdateTemplate
from comms.seed import seed_demo


def test_seed_is_idempotent_and_keeps_drills_off_the_public_page(commander, comms_lead, client):
    team = Team.objects.create(name="Identity", slug="identity")
    CriticalService.objects.create(name="Single sign-on", slug="sso", owning_team=team)
    for _ in range(2):
        seed_demo(stdout=io.StringIO())
    assert Incident.objects.count() == 3
    assert Incident.objects.filter(drill=True).count() == 1
    assert StatusUpdate.objects.count() == 6
    assert Subscriber.objects.count() == 4
    assert Maintenance.objects.count() == 1
    assert UpdateTemplate.objects.count() == 8
    incidents = client.get("/api/v2/incidents.json").json()["incidents"]
    assert sorted(i["name"] for i in incidents) == [
        "Elevated login errors",
        "VPN unreachable for some regions",
    ]
