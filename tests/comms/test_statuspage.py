"""The JSON endpoints checked field by field against Atlassian Statuspage's public v2
format, so existing widgets and aggregators can read them."""

import html
import re

import feedparser
import pytest
from django.test import Client

from comms import incidents, updates
from comms.models import Maintenance
from comms.statuspage import ts

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
PAGE_KEYS = {"id", "name", "url", "time_zone", "updated_at"}
COMPONENT_KEYS = {
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "position",
    "description",
    "showcase",
    "start_date",
    "group_id",
    "page_id",
    "group",
    "only_show_if_degraded",
}
INCIDENT_KEYS = {
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "monitoring_at",
    "resolved_at",
    "impact",
    "shortlink",
    "started_at",
    "page_id",
    "incident_updates",
    "components",
    "postmortem_body",
    "postmortem_url",
}
UPDATE_KEYS = {
    "id",
    "status",
    "body",
    "incident_id",
    "created_at",
    "updated_at",
    "display_at",
    "affected_components",
    "deliver_notifications",
    "custom_tweet",
    "tweet_id",
}
COMPONENT_STATUSES = {
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
}


def get(path):
    response = Client().get(path)
    assert response.status_code == 200, path
    assert response["Content-Type"] == "application/json"
    assert response["Access-Control-Allow-Origin"] == "*"
    return response.json()


def check_page(page):
    assert set(page) == PAGE_KEYS
    assert page["time_zone"] == "Etc/UTC"
    assert page["url"].endswith("/status/")
    assert ISO.match(page["updated_at"])


def check_component(component):
    assert set(component) == COMPONENT_KEYS
    assert component["status"] in COMPONENT_STATUSES
    assert isinstance(component["position"], int)
    assert component["group"] is False and component["group_id"] is None
    assert ISO.match(component["created_at"]) and ISO.match(component["updated_at"])


def check_incident(incident):
    assert set(incident) == INCIDENT_KEYS
    assert incident["status"] in {
        "investigating",
        "identified",
        "monitoring",
        "resolved",
        "postmortem",
    }
    assert incident["impact"] in {"none", "minor", "major", "critical"}
    for update in incident["incident_updates"]:
        assert set(update) == UPDATE_KEYS
        assert update["incident_id"] == incident["id"]
        assert ISO.match(update["created_at"]) and ISO.match(update["display_at"])
        for affected in update["affected_components"]:
            assert set(affected) == {"code", "name", "old_status", "new_status"}
    for component in incident["components"]:
        check_component(component)


def test_all_is_well_when_nothing_is_published(db, sso, commander, comms_lead):
    # Declared but not yet announced: nothing public until a reviewed update goes out.
    incidents.incident_declare(
        title="secret",
        severity=1,
        actor=commander,
        comms_lead=comms_lead,
        services=[(sso, "major_outage")],
    )
    status = get("/api/v2/status.json")
    check_page(status["page"])
    assert status["status"] == {"indicator": "none", "description": "All Systems Operational"}
    [component] = get("/api/v2/components.json")["components"]
    check_component(component)
    assert (component["id"], component["status"]) == ("sso", "operational")
    assert get("/api/v2/incidents.json")["incidents"] == []


def test_a_published_sev1_shows_everywhere_field_by_field(published, sso):
    summary = get("/api/v2/summary.json")
    assert set(summary) == {"page", "components", "incidents", "scheduled_maintenances", "status"}
    check_page(summary["page"])
    assert summary["status"] == {"indicator": "critical", "description": "Major Service Outage"}
    [component] = summary["components"]
    check_component(component)
    assert component["status"] == "major_outage"
    [incident] = summary["incidents"]
    check_incident(incident)
    assert incident["id"] == published.incident.reference.lower()
    assert incident["name"] == "Logins failing"
    assert incident["status"] == "investigating"
    assert incident["impact"] == "critical"
    assert incident["resolved_at"] is None
    [update] = incident["incident_updates"]
    assert update["body"] == "We are looking into Single sign-on."
    assert update["affected_components"] == [
        {
            "code": "sso",
            "name": "Single sign-on",
            "old_status": "operational",
            "new_status": "major_outage",
        }
    ]
    assert get("/api/v2/incidents/unresolved.json")["incidents"] == [incident]
    assert get("/api/v2/incidents.json")["incidents"] == [incident]


def test_internal_updates_drafts_and_drills_never_reach_public_output(
    published, comms_lead, commander, sso
):
    sev1 = published.incident
    updates.status_update_publish(
        update=updates.status_update_draft(
            incident=sev1,
            audience="internal",
            body="INTERNAL-ONLY db password rotated",
            actor=comms_lead,
        ),
        actor=comms_lead,
    )
    updates.status_update_draft(
        incident=sev1, audience="external", body="DRAFT-TEXT", actor=comms_lead
    )
    incidents.incident_note_add(incident=sev1, body="NOTE-TEXT", actor=commander)
    drill = incidents.incident_declare(
        title="DRILL-TITLE",
        severity=1,
        actor=commander,
        comms_lead=comms_lead,
        drill=True,
        services=[(sso, "major_outage")],
    )
    update = updates.status_update_draft(
        incident=drill, audience="external", body="x", actor=comms_lead
    )
    updates.status_update_review(update=update, reviewer=commander, approve=True)
    updates.status_update_publish(update=update, actor=comms_lead)
    client = Client()
    outputs = [
        client.get(p).content
        for p in (
            "/api/v2/summary.json",
            "/api/v2/incidents.json",
            "/history.atom",
            "/status/",
        )
    ]
    for content in outputs:
        for secret in (b"INTERNAL-ONLY", b"DRAFT-TEXT", b"NOTE-TEXT", b"DRILL-TITLE"):
            assert secret not in content


def test_resolving_restores_components_and_fills_resolved_at(published, comms_lead, commander):
    update = updates.status_update_draft(
        incident=published.incident,
        audience="external",
        body="fixed",
        state="resolved",
        actor=comms_lead,
    )
    updates.status_update_review(update=update, reviewer=commander, approve=True)
    updates.status_update_publish(update=update, actor=comms_lead)
    summary = get("/api/v2/summary.json")
    assert summary["incidents"] == []
    assert summary["components"][0]["status"] == "operational"
    [incident] = get("/api/v2/incidents.json")["incidents"]
    check_incident(incident)
    assert incident["status"] == "resolved" and ISO.match(incident["resolved_at"])
    assert [u["status"] for u in incident["incident_updates"]] == ["resolved", "investigating"]


def test_scheduled_maintenance_follows_the_format(db, sso):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    maintenance = Maintenance.objects.create(
        name="DB upgrade",
        scheduled_for=now + timedelta(hours=1),
        scheduled_until=now + timedelta(hours=2),
        created_at=now,
    )
    maintenance.services.set([sso])
    [item] = get("/api/v2/scheduled-maintenances.json")["scheduled_maintenances"]
    assert set(item) == INCIDENT_KEYS - {"postmortem_body", "postmortem_url"} | {
        "scheduled_for",
        "scheduled_until",
    }
    assert item["status"] == "scheduled" and item["impact"] == "maintenance"
    assert ISO.match(item["scheduled_for"]) and ISO.match(item["scheduled_until"])
    assert get("/api/v2/summary.json")["scheduled_maintenances"][0]["id"] == item["id"]


def test_atom_feed_parses_with_a_standard_feed_parser(published):
    response = Client().get("/history.atom")
    assert response["Content-Type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    [entry] = feed.entries
    assert entry.title == "Logins failing (Investigating)"
    assert entry.id == f"tag:breakglass,2026:incident/{published.incident.reference}"
    assert "We are looking into Single sign-on." in entry.summary
    assert entry.link.endswith(f"/status/#{published.incident.reference}")


def test_markup_in_an_update_reaches_feed_readers_as_text(sev1, comms_lead, commander):
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    update = updates.status_update_draft(
        incident=sev1, audience="external", body=f"Quoting the error: {hostile}", actor=comms_lead
    )
    updates.status_update_review(update=update, reviewer=commander, approve=True)
    updates.status_update_publish(update=update, actor=comms_lead)
    feed = feedparser.parse(Client().get("/history.atom").content)
    assert not feed.bozo, feed.get("bozo_exception")
    [entry] = feed.entries
    # feedparser sanitises markup it receives; text it receives stays visible as text.
    assert html.escape(hostile) in entry.summary
    assert "<img" not in entry.summary and "<script" not in entry.summary


@pytest.mark.parametrize("path", ["/status/", "/history.atom", "/api/v2/summary.json"])
def test_public_pages_need_no_login(db, path):
    assert Client().get(path).status_code == 200


def test_status_page_shows_services_and_active_incidents(published):
    html = Client().get("/status/").content.decode()
    assert "Major Service Outage" in html
    assert "Logins failing" in html
    assert "We are looking into Single sign-on." in html
    assert "Major outage" in html


def test_active_incidents_come_before_the_service_list(published):
    """On a phone the list of services is a screen long: what is wrong comes first."""
    html = Client().get("/status/").content.decode()
    assert html.index('id="h-active"') < html.index('id="h-services"')
    assert html.index("Logins failing") < html.index('id="h-services"')


def test_the_page_links_a_local_favicon(db):
    from django.contrib.staticfiles import finders

    html = Client().get("/status/").content.decode()
    [href] = re.findall(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', html)
    assert href.startswith("/static/") and href.endswith("favicon.svg")
    assert finders.find(href.removeprefix("/static/")) is not None


def component(slug: str) -> dict:
    [found] = [c for c in get("/api/v2/components.json")["components"] if c["id"] == slug]
    return found


def publish_state(incident, state, comms_lead, commander):
    update = updates.status_update_draft(
        incident=incident, audience="external", body="Text.", state=state, actor=comms_lead
    )
    updates.status_update_review(update=update, reviewer=commander, approve=True)
    return updates.status_update_publish(update=update, actor=comms_lead)


def test_a_component_updated_at_moves_when_its_status_does_and_only_then(
    db, sso, vpn, commander, comms_lead
):
    """Widgets poll components to notice changes: an update that leaves the status alone
    (Investigating -> Identified) must not look like one."""
    from datetime import UTC, datetime, timedelta

    import time_machine

    start = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)

    def at(minutes):
        return time_machine.travel(start + timedelta(minutes=minutes), tick=False)

    def stamp(minutes):
        return ts(start + timedelta(minutes=minutes))

    with at(0):
        never = component("vpn")["updated_at"]
        incident = incidents.incident_declare(
            title="Logins failing",
            severity=1,
            actor=commander,
            comms_lead=comms_lead,
            services=[(sso, "major_outage")],
        )
        assert component("sso")["updated_at"] == never  # not public yet
    with at(5):
        publish_state(incident, "investigating", comms_lead, commander)
    with at(6):
        assert (component("sso")["status"], component("sso")["updated_at"]) == (
            "major_outage",
            stamp(5),
        )
    with at(20):
        publish_state(incident, "identified", comms_lead, commander)
    with at(21):
        assert component("sso")["updated_at"] == stamp(5)
        # The incident's own component list carries the same time.
        [listed] = get("/api/v2/incidents/unresolved.json")["incidents"][0]["components"]
        assert listed["updated_at"] == stamp(5)
    with at(30):
        incidents.incident_impact_set(
            incident=incident, service=sso, impact="partial_outage", actor=comms_lead
        )
    with at(31):
        assert (component("sso")["status"], component("sso")["updated_at"]) == (
            "partial_outage",
            stamp(30),
        )
    with at(60):
        publish_state(incident, "resolved", comms_lead, commander)
    with at(61):
        assert (component("sso")["status"], component("sso")["updated_at"]) == (
            "operational",
            stamp(60),
        )
        assert component("vpn")["updated_at"] == never


def test_a_maintenance_window_starting_moves_updated_at_at_the_next_read(db, vpn):
    """No service call marks a window's start time passing: the next read records it."""
    from datetime import UTC, datetime, timedelta

    import time_machine

    start = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        before = component("vpn")["updated_at"]
        maintenance = Maintenance.objects.create(
            name="Failover",
            status=Maintenance.Status.IN_PROGRESS,
            scheduled_for=start + timedelta(minutes=10),
            scheduled_until=start + timedelta(hours=1),
            created_at=start,
        )
        maintenance.services.set([vpn])
        assert component("vpn")["status"] == "operational"  # it has not started yet
    with time_machine.travel(start + timedelta(minutes=12), tick=False):
        after = component("vpn")
    assert after["status"] == "under_maintenance"
    assert after["updated_at"] == ts(start + timedelta(minutes=12)) != before
