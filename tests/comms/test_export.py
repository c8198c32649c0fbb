import json
import re

import feedparser
import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from breakglass.outbox.models import OutboxMessage
from breakglass.outbox.services import outbox_deliver_one


def test_export_writes_a_self_contained_copy(published, tmp_path):
    call_command("export_status_site", "--out", str(tmp_path))
    names = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert names == [
        "api/v2/components.json",
        "api/v2/incidents.json",
        "api/v2/incidents/unresolved.json",
        "api/v2/scheduled-maintenances.json",
        "api/v2/scheduled-maintenances/active.json",
        "api/v2/scheduled-maintenances/upcoming.json",
        "api/v2/status.json",
        "api/v2/summary.json",
        "favicon.svg",
        "history.atom",
        "index.html",
        "stale.js",
        "status.css",
    ]
    live = Client().get("/api/v2/incidents.json").json()
    assert json.loads((tmp_path / "api/v2/incidents.json").read_text()) == live
    html = (tmp_path / "index.html").read_text()
    assert "We are looking into Single sign-on." in html
    assert "Static copy generated at" in html
    assert '<link rel="icon" href="favicon.svg" type="image/svg+xml">' in html
    assert (tmp_path / "favicon.svg").read_bytes().startswith(b"<svg")
    # Nothing to fetch at run time: every asset reference is relative to the copy.
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not ref.startswith(("http", "//", "/")), ref
    assert not feedparser.parse((tmp_path / "history.atom").read_bytes()).bozo


def test_export_refuses_a_file_as_target(db, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(CommandError, match="not a directory"):
        call_command("export_status_site", "--out", str(target))


def test_publishing_re_exports_through_the_outbox(published, settings, tmp_path):
    settings.STATUS_SITE_DIR = tmp_path / "site"
    message = OutboxMessage.objects.get(kind="comms_status_export")
    assert outbox_deliver_one(message_id=message.pk) == "delivered"
    summary = json.loads((tmp_path / "site/api/v2/summary.json").read_text())
    assert summary["incidents"][0]["name"] == "Logins failing"
