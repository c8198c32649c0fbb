"""Every Statuspage-compatible endpoint, read the way existing clients read it.

Two readers: an existing client, the `statuspage.io` npm package (pinned in
`statuspage_client/package.json`, installed by `.ci/run` with `npm ci`), pointed at a live
server; and a JSON Schema written from Statuspage's published public v2 API documentation
(`statuspage_v2_schema.json`, beside this file: required fields and enumerations as
documented), checked to refuse a document that breaks it, so it can fail. The PyPI clients
wrap the paid management API or one company's page, so none of them is used.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import feedparser
import jsonschema
import pytest
from django.test import Client
from django.urls import get_resolver
from django.utils import timezone

from comms import statuspage
from comms.models import Maintenance

SCHEMA = json.loads((Path(__file__).with_name("statuspage_v2_schema.json")).read_text())
DOCUMENTS = sorted(SCHEMA["documents"])


def validator_for(name: str) -> jsonschema.Draft202012Validator:
    schema = {"$defs": SCHEMA["$defs"], **SCHEMA["documents"][name]}
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def maintenance_make(sso, *, name: str, status: str, starts_in: timedelta) -> Maintenance:
    now = timezone.now()
    maintenance = Maintenance.objects.create(
        name=name,
        status=status,
        scheduled_for=now + starts_in,
        scheduled_until=now + starts_in + timedelta(hours=1),
        created_at=now,
    )
    maintenance.services.set([sso])
    return maintenance


@pytest.fixture
def maintenances(sso):
    return {
        "scheduled": maintenance_make(
            sso, name="DB upgrade", status="scheduled", starts_in=timedelta(hours=2)
        ),
        "in_progress": maintenance_make(
            sso, name="Router swap", status="in_progress", starts_in=timedelta(minutes=-10)
        ),
        "verifying": maintenance_make(
            sso, name="Cert rollover", status="verifying", starts_in=timedelta(minutes=-30)
        ),
        "completed": maintenance_make(
            sso, name="Old work", status="completed", starts_in=timedelta(days=-2)
        ),
    }


def test_the_schema_covers_every_api_v2_route_the_site_serves(db):
    served = {
        str(pattern.pattern).removeprefix("api/v2/")
        for pattern in get_resolver().url_patterns
        if str(getattr(pattern, "pattern", "")).startswith("api/v2/")
    }
    served |= {
        str(p.pattern).removeprefix("api/v2/")
        for resolver in get_resolver().url_patterns
        for p in getattr(resolver, "url_patterns", [])
        if str(p.pattern).startswith("api/v2/")
    }
    assert served == set(DOCUMENTS) == set(statuspage.all_documents())


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_endpoint_reads_as_a_statuspage_document(published, maintenances, name):
    response = Client().get(f"/api/v2/{name}")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    errors = [e.message for e in validator_for(name).iter_errors(response.json())]
    assert errors == []


def test_the_schema_refuses_a_document_that_breaks_the_format(published, maintenances):
    document = Client().get("/api/v2/summary.json").json()
    document["components"][0]["status"] = "fine"
    del document["incidents"][0]["shortlink"]
    errors = list(validator_for("summary.json").iter_errors(document))
    assert len(errors) == 2


def test_upcoming_lists_only_scheduled_maintenances(maintenances):
    items = Client().get("/api/v2/scheduled-maintenances/upcoming.json").json()
    assert [m["name"] for m in items["scheduled_maintenances"]] == ["DB upgrade"]
    assert items["scheduled_maintenances"][0]["id"] == f"maint-{maintenances['scheduled'].pk}"


def test_active_lists_maintenances_in_progress_or_verifying(maintenances):
    items = Client().get("/api/v2/scheduled-maintenances/active.json").json()
    assert {m["name"]: m["status"] for m in items["scheduled_maintenances"]} == {
        "Router swap": "in_progress",
        "Cert rollover": "verifying",
    }


def test_the_static_export_writes_the_new_maintenance_documents(maintenances, tmp_path):
    from comms.export import status_site_export

    status_site_export(out_dir=tmp_path)
    upcoming = json.loads((tmp_path / "api/v2/scheduled-maintenances/upcoming.json").read_text())
    active = json.loads((tmp_path / "api/v2/scheduled-maintenances/active.json").read_text())
    assert [m["name"] for m in upcoming["scheduled_maintenances"]] == ["DB upgrade"]
    assert len(active["scheduled_maintenances"]) == 2


def test_the_atom_feed_names_its_author(published):
    feed = feedparser.parse(Client().get("/history.atom").content)
    assert not feed.bozo
    assert feed.feed.author_detail.name == "Breakglass status"
    assert feed.feed.author_detail.href.endswith("/status/")
    # Every entry inherits the feed's author, as RFC 4287 requires when entries have none.
    assert b"<author><name>Breakglass status</name>" in Client().get("/history.atom").content


# --- An existing client: the `statuspage.io` npm package ----------------------------------

CLIENT_DIR = Path(__file__).with_name("statuspage_client")


@pytest.mark.django_db(transaction=True)
def test_the_statuspage_io_npm_client_reads_every_endpoint(live_server, sso, commander, comms_lead):
    import shutil
    import subprocess

    from tests.services import in_ci

    node = shutil.which("node")
    if node is None or not (CLIENT_DIR / "node_modules/statuspage.io").is_dir():
        reason = "node and `npm ci` in tests/comms/statuspage_client are needed (.ci/run does it)"
        if in_ci():
            pytest.fail(f"CI must provide this: {reason}", pytrace=False)
        pytest.skip(reason)
    from comms import incidents, updates

    incident = incidents.incident_declare(
        title="Logins failing",
        severity=1,
        actor=commander,
        services=[(sso, "major_outage")],
        commander=commander,
        comms_lead=comms_lead,
    )
    update = updates.status_update_draft(
        incident=incident, audience="external", body="We are looking into it.", actor=comms_lead
    )
    updates.status_update_review(update=update, reviewer=commander, approve=True)
    updates.status_update_publish(update=update, actor=comms_lead)
    maintenance_make(sso, name="DB upgrade", status="scheduled", starts_in=timedelta(hours=2))
    maintenance_make(sso, name="Router swap", status="in_progress", starts_in=timedelta(minutes=-5))

    result = subprocess.run(
        [node, "read_all.js", live_server.url],
        cwd=CLIENT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    documents = json.loads(result.stdout)
    assert set(documents) == set(DOCUMENTS)
    for name, document in documents.items():
        assert [e.message for e in validator_for(name).iter_errors(document)] == [], name
    assert documents["summary.json"]["status"]["indicator"] == "critical"
    assert [i["name"] for i in documents["incidents/unresolved.json"]["incidents"]] == [
        "Logins failing"
    ]
    assert documents["components.json"]["components"][0]["status"] == "major_outage"
    upcoming = documents["scheduled-maintenances/upcoming.json"]["scheduled_maintenances"]
    active = documents["scheduled-maintenances/active.json"]["scheduled_maintenances"]
    assert [m["name"] for m in upcoming] == ["DB upgrade"]
    assert [m["name"] for m in active] == ["Router swap"]
