"""Every Statuspage-compatible endpoint, read the way an existing client reads it.

No Statuspage client library installs without the network in a usable form (the ones on
PyPI wrap the paid management API or one company's page), so each document is validated
against a JSON Schema written from Statuspage's published public v2 API documentation
(`statuspage_v2_schema.json`, beside this file): required fields and enumerations as
documented. The schema is checked to refuse a document that breaks it, so it can fail.
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
