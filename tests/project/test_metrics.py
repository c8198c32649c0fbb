"""/metrics: Prometheus text, read from the database at scrape time, behind a token."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from breakglass.access.credentials import grant_issue_drill
from breakglass.access.grants import grant_approve, grant_request, grant_self_issue
from breakglass.outbox.models import OutboxMessage
from comms import incidents, updates
from drills.models import DrillRun
from tests.breakglass.conftest import path_make, service_make

ROOT = Path(__file__).resolve().parent.parent.parent
TOKEN = "m" * 40
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def metrics_token(settings):
    settings.BREAKGLASS_METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(token: str = TOKEN) -> dict[str, dict[tuple, float]]:
    """name -> {sorted label items: value}, parsed by prometheus_client's own parser."""
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(response.content.decode())


def parse(text: str) -> dict[str, dict[tuple, float]]:
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@pytest.fixture
def world(db, responder, approver, second_approver, commander, comms_lead, settings, tmp_path):
    """Frozen at NOW: one approved, one emergency and one drill grant; one request waiting
    for 20 minutes; drills that passed and failed; a SEV1 told publicly after 12 minutes."""
    from breakglass.keys.services import keys_bootstrap

    settings.BREAKGLASS_SECURITY_CONTACTS = ["security@example.test"]
    with time_machine.travel(NOW - timedelta(hours=1), tick=False):
        keys_bootstrap()
        sso = path_make("sso-backup", service="sso")
        dns = path_make("dns-token", service="dns")
        path_make("vpn-never-drilled", service="vpn")
        approved = grant_request(path=sso, requester=responder, reason="SSO broken")
        grant_approve(grant=approved, approver=approver)
        grant_approve(grant=approved, approver=second_approver)
        grant_self_issue(path=dns, requester=responder, reason="DNS down", confirmation="dns-token")
        grant_issue_drill(path=sso, drill_ref="drill-1")
    with time_machine.travel(NOW - timedelta(minutes=20), tick=False):
        grant_request(path=dns, requester=responder, reason="still broken")
    for path, state, days_ago in [
        (sso, DrillRun.State.PASSED, 2),
        (sso, DrillRun.State.FAILED, 1),
        (sso, DrillRun.State.PASSED, 40),
        (dns, DrillRun.State.PASSED, 100),
    ]:
        DrillRun.objects.create(path=path, state=state, finished_at=NOW - timedelta(days=days_ago))
    with time_machine.travel(NOW - timedelta(minutes=30), tick=False):
        incident = incidents.incident_declare(
            title="Logins failing",
            severity=1,
            actor=commander,
            services=[(service_make("sso"), "major_outage")],
            commander=commander,
            comms_lead=comms_lead,
        )
        quiet = incidents.incident_declare(
            title="Slow DNS",
            severity=2,
            actor=commander,
            services=[(service_make("dns"), "degraded_performance")],
            commander=commander,
            comms_lead=comms_lead,
        )
    with time_machine.travel(NOW - timedelta(minutes=18), tick=False):
        update = updates.status_update_draft(
            incident=incident, audience="external", body="Looking into it.", actor=comms_lead
        )
        updates.status_update_review(update=update, reviewer=commander, approve=True)
        updates.status_update_publish(update=update, actor=comms_lead)
    with time_machine.travel(NOW, tick=False):
        yield {"incident": incident, "quiet": quiet, "sso": sso, "dns": dns}


def test_metrics_are_refused_when_no_token_is_configured(db, settings):
    settings.BREAKGLASS_METRICS_TOKEN = ""
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 403
    assert b"BREAKGLASS_METRICS_TOKEN" in response.content


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer ", f"Bearer {TOKEN}x"]
)
def test_metrics_need_the_exact_bearer_token(db, metrics_token, header):
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = Client().get("/metrics", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"breakglass_" not in response.content


def test_grants_issued_are_counted_by_kind(world, metrics_token):
    issued = scrape()["breakglass_grants_issued_total"]
    assert issued == {
        (("kind", "approved"),): 1.0,
        (("kind", "emergency"),): 1.0,
        (("kind", "drill"),): 1.0,
        (("kind", "kit"),): 0.0,
    }


def test_waiting_requests_and_the_oldest_wait(world, metrics_token):
    found = scrape()
    assert found["breakglass_grant_requests_waiting"] == {(): 1.0}
    assert found["breakglass_grant_request_oldest_wait_seconds"] == {(): 20 * 60.0}


def test_a_request_past_its_approval_window_no_longer_counts_as_waiting(world, metrics_token):
    with time_machine.travel(NOW + timedelta(minutes=15), tick=False):
        found = scrape()
    assert found["breakglass_grant_requests_waiting"] == {(): 0.0}
    assert found["breakglass_grant_request_oldest_wait_seconds"] == {(): 0.0}


def test_outbox_backlog_and_the_age_of_the_oldest_pending_message(world, metrics_token):
    pending = OutboxMessage.objects.filter(state="pending")
    assert pending.exists()
    OutboxMessage.objects.filter(pk=pending.order_by("id").first().pk).update(state="dead")
    oldest = pending.order_by("created_at").first().created_at
    found = scrape()
    backlog = found["breakglass_outbox_messages"]
    assert backlog[(("state", "pending"),)] == pending.count()
    assert backlog[(("state", "dead"),)] == 1.0
    assert backlog[(("state", "sending"),)] == 0.0
    assert found["breakglass_outbox_oldest_pending_age_seconds"] == {
        (): (NOW - oldest).total_seconds()
    }


def test_drill_results_and_staleness_per_path(world, metrics_token):
    found = scrape()
    runs = found["breakglass_drill_runs_total"]
    sso = (("path", "sso-backup"), ("service", "sso"))
    assert runs[tuple(sorted((*sso, ("result", "passed"))))] == 2.0
    assert runs[tuple(sorted((*sso, ("result", "failed"))))] == 1.0
    age = found["breakglass_drill_last_pass_age_seconds"]
    assert age[sso] == 2 * 86400.0
    assert age[(("path", "dns-token"), ("service", "dns"))] == 100 * 86400.0
    # Never passed: no age at all, and stale.
    assert (("path", "vpn-never-drilled"), ("service", "vpn")) not in age
    stale = found["breakglass_drill_path_stale"]
    assert stale == {
        sso: 0.0,
        (("path", "dns-token"), ("service", "dns")): 1.0,
        (("path", "vpn-never-drilled"), ("service", "vpn")): 1.0,
    }


def test_bundle_age_and_time_to_expiry(world, metrics_token):
    from breakglass.keys.models import TrustBundle

    bundle = TrustBundle.objects.order_by("-version").first()
    found = scrape()
    assert found["breakglass_trust_bundle_version"] == {(): float(bundle.version)}
    assert found["breakglass_trust_bundle_age_seconds"] == {
        (): (NOW - bundle.issued_at).total_seconds()
    }
    assert found["breakglass_trust_bundle_expiry_seconds"] == {
        (): (bundle.expires_at - NOW).total_seconds()
    }
    with time_machine.travel(bundle.expires_at + timedelta(hours=1), tick=False):
        assert scrape()["breakglass_trust_bundle_expiry_seconds"] == {(): -3600.0}


def test_time_to_first_external_update_per_incident(world, metrics_token):
    found = scrape()
    told = world["incident"].reference
    quiet = world["quiet"].reference
    assert found["breakglass_incident_first_external_update_seconds"] == {
        (("incident", told), ("severity", "SEV1")): 12 * 60.0
    }
    assert found["breakglass_incident_awaiting_first_external_update_seconds"] == {
        (("incident", quiet), ("severity", "SEV2")): 30 * 60.0
    }
    assert found["breakglass_latest_incident_first_external_update_seconds"] == {(): 12 * 60.0}


def test_every_metric_the_grafana_dashboard_queries_is_exported(world, metrics_token):
    dashboard = json.loads((ROOT / "docs/grafana-dashboard.json").read_text())
    queried = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queried |= set(re.findall(r"\bbreakglass_[a-z_]+\b", target["expr"]))
    assert queried, "the dashboard queries nothing"
    exported = set(scrape())
    assert queried - exported == set()
    # And the dashboard shows every figure exported (nothing measured and never looked at).
    assert {name.removesuffix("_total") for name in exported} - {
        name.removesuffix("_total") for name in queried
    } == set()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_serve_metrics_answers_on_its_bind_address_without_a_token(responder):
    from devkit.workers import worker_env

    path_make("sso-backup", service="sso", allow_self_issue=True)
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve_metrics", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=worker_env(BREAKGLASS_METRICS_TOKEN=""),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert "Serving Breakglass metrics" in process.stdout.readline()
        body = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    body = r.read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert body is not None
        found = parse(body)
        assert found["breakglass_drill_path_stale"] == {
            (("path", "sso-backup"), ("service", "sso")): 1.0
        }
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_metrics_refuses_a_malformed_bind_address_in_one_line(db):
    result = subprocess.run(
        [sys.executable, "manage.py", "serve_metrics", "--bind", "localhost"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "CommandError: --bind: expected ADDRESS:PORT, got 'localhost'"
