"""Alerts in: Alertmanager (webhook payload version 4) and PagerDuty (v3 webhooks) open or
update incidents, idempotently, and never resolve one by themselves.

Payloads are the documented shapes: Alertmanager's `webhook_config` body from its
configuration reference, PagerDuty's v3 `incident.*` events from its webhooks overview.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging

import pytest
from django.test import Client

from breakglass.audit.models import AuditEvent
from breakglass.outbox.models import OutboxMessage
from comms import incidents
from comms.models import InboundAlert, Incident, TimelineEntry
from devkit.factories import user_make

TOKEN = "am-" + "t" * 40
PD_SECRET = "pd-secret-" + "s" * 30

ALERTMANAGER_FIRING = {
    "version": "4",
    "groupKey": '{}/{severity="critical"}:{alertname="SSOLoginErrors"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "breakglass",
    "groupLabels": {"alertname": "SSOLoginErrors"},
    "commonLabels": {
        "alertname": "SSOLoginErrors",
        "severity": "critical",
        "service": "identity-provider",
    },
    "commonAnnotations": {"summary": "More than 50% of logins fail"},
    "externalURL": "http://alertmanager.example.test:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "SSOLoginErrors",
                "severity": "critical",
                "service": "identity-provider",
                "instance": "sso-1:9100",
            },
            "annotations": {"summary": "More than 50% of logins fail"},
            "startsAt": "2026-06-01T11:58:00.000Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.test:9090/graph?g0.expr=sso_errors",
            "fingerprint": "c3a9f0d1e2b4a5c6",
        }
    ],
}


def resolved(payload: dict) -> dict:
    payload = copy.deepcopy(payload)
    payload["status"] = "resolved"
    for alert in payload["alerts"]:
        alert["status"] = "resolved"
        alert["endsAt"] = "2026-06-01T12:30:00.000Z"
    return payload


def pagerduty_event(event_type: str = "incident.triggered", **data) -> dict:
    incident = {
        "id": "PGR0VU2",
        "type": "incident",
        "self": "https://api.pagerduty.com/incidents/PGR0VU2",
        "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
        "number": 2,
        "status": "resolved" if event_type == "incident.resolved" else "triggered",
        "title": "A little bump in the road",
        "service": {
            "html_url": "https://acme.pagerduty.com/services/PF9KMXH",
            "id": "PF9KMXH",
            "self": "https://api.pagerduty.com/services/PF9KMXH",
            "summary": "API Service",
            "type": "service_reference",
        },
        "assignees": [
            {
                "html_url": "https://acme.pagerduty.com/users/PTUXL6G",
                "id": "PTUXL6G",
                "self": "https://api.pagerduty.com/users/PTUXL6G",
                "summary": "User 123",
                "type": "user_reference",
            }
        ],
        "escalation_policy": {
            "html_url": "https://acme.pagerduty.com/escalation_policies/PUS0KTE",
            "id": "PUS0KTE",
            "self": "https://api.pagerduty.com/escalation_policies/PUS0KTE",
            "summary": "Default",
            "type": "escalation_policy_reference",
        },
        "teams": [],
        "priority": {
            "html_url": "https://acme.pagerduty.com/account/incident_priorities",
            "id": "PSO75BM",
            "self": "https://api.pagerduty.com/priorities/PSO75BM",
            "summary": "P1",
            "type": "priority_reference",
        },
        "urgency": "high",
        "conference_bridge": None,
        "resolve_reason": None,
    }
    incident.update(data)
    return {
        "event": {
            "id": "5ac64822-4adc-4fda-ade0-410becf0de4f",
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": "2026-06-01T12:00:00.000Z",
            "agent": {
                "html_url": "https://acme.pagerduty.com/users/PLH1HKV",
                "id": "PLH1HKV",
                "self": "https://api.pagerduty.com/users/PLH1HKV",
                "summary": "Tenex Engineer",
                "type": "user_reference",
            },
            "client": {"name": "PagerDuty"},
            "data": incident,
        }
    }


@pytest.fixture
def intake(settings, sso):
    settings.BREAKGLASS_ALERTMANAGER_TOKEN = TOKEN
    settings.BREAKGLASS_PAGERDUTY_WEBHOOK_SECRETS = [PD_SECRET]
    settings.BREAKGLASS_ALERT_SERVICE_MAP = ["identity-provider=sso", "PF9KMXH=sso"]
    settings.BREAKGLASS_COMMS_ON_DUTY = ["cody-comms"]
    return settings


def post_alertmanager(payload, *, token: str = TOKEN, path: str = "/comms/alerts/alertmanager/"):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Client().post(
        path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def pd_signature(body: bytes, secret: str = PD_SECRET) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_pagerduty(payload, *, signature: str | None = None):
    body = json.dumps(payload).encode()
    return Client().post(
        "/comms/alerts/pagerduty/",
        body,
        content_type="application/json",
        HTTP_X_PAGERDUTY_SIGNATURE=signature if signature is not None else pd_signature(body),
    )


def timeline(incident: Incident) -> list[str]:
    return list(incident.entries.order_by("id").values_list("body", flat=True))


# --- Alertmanager -----------------------------------------------------------------------


def test_a_critical_alertmanager_group_opens_a_sev1_and_asks_the_on_duty_comms_lead(
    intake, comms_lead, sso
):
    response = post_alertmanager(ALERTMANAGER_FIRING)
    assert response.status_code == 201
    incident = Incident.objects.get()
    assert response.json() == {"outcome": "opened", "incident": incident.reference}
    assert incident.severity == 1 and incident.state == "investigating"
    assert incident.title == "SSOLoginErrors: More than 50% of logins fail"
    assert incident.comms_lead is None and incident.declared_by is None
    assert [(a.service.slug, a.impact) for a in incident.affected.all()] == [
        ("sso", "major_outage")
    ]
    entries = timeline(incident)
    assert entries[0] == "SEV1 declared by Prometheus Alertmanager alert"
    assert "http://prometheus.example.test:9090/graph?g0.expr=sso_errors" in entries[1]
    assert entries[2] == "communications lead requested from: cody-comms"
    [ask] = OutboxMessage.objects.filter(recipient=comms_lead.email)
    assert "please take the communications lead role" in ask.payload["subject"]
    assert f"/comms/incidents/{incident.reference}/" in ask.payload["body"]
    event = AuditEvent.objects.get(action="comms.alert.opened")
    assert event.actor_label == "alertmanager"
    assert AuditEvent.objects.get(action="comms.incident.declared").actor_label == (
        "Prometheus Alertmanager alert"
    )


def test_without_an_on_duty_list_every_comms_lead_is_asked(intake, comms_lead, settings):
    settings.BREAKGLASS_COMMS_ON_DUTY = []
    other = user_make("chloe-comms", role_names=("comms-lead",))
    post_alertmanager(ALERTMANAGER_FIRING)
    asked = set(OutboxMessage.objects.filter(kind="email").values_list("recipient", flat=True))
    assert asked == {comms_lead.email, other.email}


def test_the_token_may_be_carried_in_the_url_path(intake, comms_lead):
    response = Client().post(
        f"/comms/alerts/alertmanager/{TOKEN}/",
        json.dumps(ALERTMANAGER_FIRING),
        content_type="application/json",
    )
    assert response.status_code == 201


def test_a_repeated_notification_changes_nothing(intake, comms_lead):
    post_alertmanager(ALERTMANAGER_FIRING)
    incident = Incident.objects.get()
    before = (timeline(incident), OutboxMessage.objects.count(), AuditEvent.objects.count())
    response = post_alertmanager(ALERTMANAGER_FIRING)
    assert response.status_code == 200
    assert response.json() == {"outcome": "unchanged", "incident": incident.reference}
    assert Incident.objects.count() == 1
    assert (timeline(incident), OutboxMessage.objects.count(), AuditEvent.objects.count()) == before
    assert InboundAlert.objects.get().deliveries == 2


def test_a_resolved_alert_proposes_resolution_and_never_resolves(intake, comms_lead, commander):
    post_alertmanager(ALERTMANAGER_FIRING)
    incident = Incident.objects.get()
    incidents.incident_role_assign(
        incident=incident, role="commander", user=commander, actor=commander
    )
    response = post_alertmanager(resolved(ALERTMANAGER_FIRING))
    assert response.json() == {"outcome": "resolution-proposed", "incident": incident.reference}
    incident.refresh_from_db()
    assert incident.state == "investigating" and incident.resolved_at is None
    assert "Proposed: resolve the incident once you have checked" in timeline(incident)[-1]
    notice = OutboxMessage.objects.get(
        recipient=commander.email, payload__subject__icontains="resolve"
    )
    assert (
        notice.payload["subject"]
        == f"[{incident.reference}] The alert resolved: resolve the incident?"
    )
    # Alertmanager repeats resolved notifications too: proposed once.
    post_alertmanager(resolved(ALERTMANAGER_FIRING))
    assert sum("Proposed: resolve" in body for body in timeline(incident)) == 1


def test_an_alert_firing_again_after_people_resolved_the_incident_opens_a_new_one(
    intake, comms_lead, commander
):
    post_alertmanager(ALERTMANAGER_FIRING)
    first = Incident.objects.get()
    incidents.incident_state_change(incident=first, state="resolved", actor=commander)
    response = post_alertmanager(ALERTMANAGER_FIRING)
    assert response.status_code == 201
    second = Incident.objects.exclude(pk=first.pk).get()
    assert response.json()["incident"] == second.reference
    assert InboundAlert.objects.get().incident == second


def test_a_firing_alert_that_was_resolved_at_the_source_says_so(intake, comms_lead):
    post_alertmanager(ALERTMANAGER_FIRING)
    post_alertmanager(resolved(ALERTMANAGER_FIRING))
    response = post_alertmanager(ALERTMANAGER_FIRING)
    assert response.json()["outcome"] == "updated"
    incident = Incident.objects.get()
    assert "reports the alert firing again" in timeline(incident)[-1]


def test_a_warning_opens_a_sev3_without_asking_for_a_comms_lead(intake, comms_lead):
    payload = copy.deepcopy(ALERTMANAGER_FIRING)
    payload["groupKey"] = "warning-group"
    payload["commonLabels"]["severity"] = "warning"
    payload["alerts"][0]["labels"]["severity"] = "warning"
    post_alertmanager(payload)
    incident = Incident.objects.get()
    assert incident.severity == 3
    assert [a.impact for a in incident.affected.all()] == ["degraded_performance"]
    assert not OutboxMessage.objects.filter(recipient=comms_lead.email).exists()


def test_a_service_nobody_mapped_is_named_in_the_timeline(intake, comms_lead):
    payload = copy.deepcopy(ALERTMANAGER_FIRING)
    payload["commonLabels"]["service"] = "billing"
    payload["alerts"][0]["labels"]["service"] = "billing"
    post_alertmanager(payload)
    incident = Incident.objects.get()
    assert not incident.affected.exists()
    assert "(add them to BREAKGLASS_ALERT_SERVICE_MAP): billing" in timeline(incident)[1]


def test_a_resolved_alert_never_seen_firing_opens_nothing(intake):
    response = post_alertmanager(resolved(ALERTMANAGER_FIRING))
    assert response.json() == {"outcome": "ignored", "incident": None}
    assert not Incident.objects.exists()


@pytest.mark.parametrize(
    "token", ["", "wrong", TOKEN + "x", TOKEN[:-1]], ids=["none", "wrong", "longer", "shorter"]
)
def test_a_wrong_token_is_refused_audited_once_and_opens_nothing(intake, token, caplog):
    caplog.set_level(logging.WARNING)
    response = post_alertmanager(ALERTMANAGER_FIRING, token=token)
    assert response.status_code == 401
    assert response.json() == {"error": "missing or wrong bearer token"}
    assert not Incident.objects.exists() and not InboundAlert.objects.exists()
    [event] = AuditEvent.objects.filter(action="comms.alert.refused")
    assert event.data["source"] == "alertmanager"
    assert not any(record.exc_info for record in caplog.records)
    assert [r.levelname for r in caplog.records if r.name.startswith("django")] in ([], ["WARNING"])


def test_a_wrong_token_in_the_path_is_refused(intake):
    response = Client().post(
        "/comms/alerts/alertmanager/not-the-token/",
        json.dumps(ALERTMANAGER_FIRING),
        content_type="application/json",
    )
    assert response.status_code == 401
    assert AuditEvent.objects.filter(action="comms.alert.refused").count() == 1


def test_intake_is_off_until_a_token_is_configured(db, settings):
    settings.BREAKGLASS_ALERTMANAGER_TOKEN = ""
    response = post_alertmanager(ALERTMANAGER_FIRING, token="")
    assert response.status_code == 403
    assert "BREAKGLASS_ALERTMANAGER_TOKEN" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "unreadable Alertmanager payload"),
        (
            json.dumps({**ALERTMANAGER_FIRING, "version": "3"}).encode(),
            "unsupported Alertmanager payload version '3'",
        ),
        (
            json.dumps({**ALERTMANAGER_FIRING, "alerts": "x"}).encode(),
            "alerts must be a list of objects",
        ),
        (json.dumps([1, 2]).encode(), "the payload must be an object"),
    ],
)
def test_an_unreadable_payload_gets_one_line_and_changes_nothing(intake, body, message):
    response = post_alertmanager(body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert "\n" not in response.json()["error"]
    assert not Incident.objects.exists() and not InboundAlert.objects.exists()


def test_only_post_is_accepted(intake):
    assert Client().get("/comms/alerts/alertmanager/").status_code == 405


# --- PagerDuty ---------------------------------------------------------------------------


def test_a_pagerduty_p1_incident_opens_a_sev1_on_the_mapped_service(intake, comms_lead):
    response = post_pagerduty(pagerduty_event())
    assert response.status_code == 201
    incident = Incident.objects.get()
    assert incident.severity == 1
    assert incident.title == "A little bump in the road"
    assert [a.service.slug for a in incident.affected.all()] == ["sso"]
    assert "https://acme.pagerduty.com/incidents/PGR0VU2" in timeline(incident)[1]
    assert InboundAlert.objects.get().key == "PGR0VU2"


def test_without_a_priority_urgency_decides(intake, comms_lead):
    post_pagerduty(pagerduty_event(priority=None, urgency="low"))
    assert Incident.objects.get().severity == 3


def test_later_pagerduty_events_for_the_same_incident_change_nothing(intake, comms_lead):
    post_pagerduty(pagerduty_event())
    response = post_pagerduty(pagerduty_event("incident.acknowledged"))
    assert response.json()["outcome"] == "unchanged"
    assert Incident.objects.count() == 1


def test_a_pagerduty_resolution_proposes_and_does_not_resolve(intake, comms_lead):
    post_pagerduty(pagerduty_event())
    response = post_pagerduty(pagerduty_event("incident.resolved"))
    assert response.json()["outcome"] == "resolution-proposed"
    incident = Incident.objects.get()
    assert incident.state == "investigating"
    # No commander yet: the on-duty communications lead hears about it.
    assert OutboxMessage.objects.filter(
        recipient=comms_lead.email, payload__subject__icontains="The alert resolved"
    ).exists()


def test_events_about_notes_and_responders_are_accepted_and_ignored(intake):
    payload = pagerduty_event("incident.annotated")
    payload["event"]["data"] = {"id": "P2LA89X", "type": "incident_note", "content": "hi"}
    response = post_pagerduty(payload)
    assert response.status_code == 202
    assert not Incident.objects.exists()


def test_any_one_valid_signature_among_several_is_enough(intake, comms_lead):
    body = json.dumps(pagerduty_event()).encode()
    header = f"{pd_signature(body, 'the-old-secret')},{pd_signature(body)}"
    response = Client().post(
        "/comms/alerts/pagerduty/",
        body,
        content_type="application/json",
        HTTP_X_PAGERDUTY_SIGNATURE=header,
    )
    assert response.status_code == 201


def test_a_rotated_secret_list_accepts_either(intake, comms_lead, settings):
    settings.BREAKGLASS_PAGERDUTY_WEBHOOK_SECRETS = ["new-secret-" + "n" * 30, PD_SECRET]
    assert post_pagerduty(pagerduty_event()).status_code == 201


@pytest.mark.parametrize(
    "signature",
    ["", "v1=", "v1=" + "0" * 64, "v0=deadbeef", "sha256=abc"],
    ids=["none", "empty", "wrong", "old-version", "other-scheme"],
)
def test_a_bad_pagerduty_signature_is_refused_audited_once_and_opens_nothing(
    intake, signature, caplog
):
    caplog.set_level(logging.WARNING)
    response = post_pagerduty(pagerduty_event(), signature=signature)
    assert response.status_code == 401
    assert response.json() == {"error": "missing or wrong X-PagerDuty-Signature"}
    assert not Incident.objects.exists()
    assert AuditEvent.objects.filter(action="comms.alert.refused").count() == 1
    assert not any(record.exc_info for record in caplog.records)


def test_a_signature_over_a_different_body_is_refused(intake):
    signed = json.dumps(pagerduty_event()).encode()
    tampered = pagerduty_event(title="Attacker's title")
    response = post_pagerduty(tampered, signature=pd_signature(signed))
    assert response.status_code == 401


def test_pagerduty_intake_is_off_until_a_secret_is_configured(db, settings):
    settings.BREAKGLASS_PAGERDUTY_WEBHOOK_SECRETS = []
    assert post_pagerduty(pagerduty_event()).status_code == 403


def test_a_signed_but_unreadable_pagerduty_payload_gets_one_line(intake):
    payload = pagerduty_event()
    payload["event"]["data"]["type"] = "something_else"
    response = post_pagerduty(payload)
    assert response.status_code == 400
    assert response.json()["error"] == (
        "unreadable PagerDuty payload: incident.triggered: event.data.type must be incident"
    )


def test_the_alert_entries_are_internal_notes(intake, comms_lead):
    post_alertmanager(ALERTMANAGER_FIRING)
    entries = Incident.objects.get().entries.all()
    assert all(entry.internal for entry in entries)
    assert {e.kind for e in entries} <= {
        TimelineEntry.Kind.DECLARED,
        TimelineEntry.Kind.NOTE,
        TimelineEntry.Kind.ROLE,
    }


# --- Several processes at once -------------------------------------------------------------

_POSTER = """
import sys, urllib.request
url, token, body = sys.argv[1], sys.argv[2], sys.stdin.buffer.read()
request = urllib.request.Request(url, data=body, method="POST", headers={
    "Content-Type": "application/json", "Authorization": "Bearer " + token})
try:
    with urllib.request.urlopen(request, timeout=60) as response:
        print(response.status)
except urllib.error.HTTPError as error:
    print(error.code)
"""


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_same_alert_from_several_processes_at_once_opens_one_incident(
    live_server, settings, comms_lead
):
    import subprocess
    import sys

    from breakglass.access.models import CriticalService, Team

    team = Team.objects.create(name="Platform", slug="platform")
    CriticalService.objects.create(name="Single sign-on", slug="sso", owning_team=team, tier=1)
    settings.BREAKGLASS_ALERTMANAGER_TOKEN = TOKEN
    settings.BREAKGLASS_ALERT_SERVICE_MAP = ["identity-provider=sso"]
    settings.BREAKGLASS_COMMS_ON_DUTY = ["cody-comms"]
    body = json.dumps(ALERTMANAGER_FIRING).encode()
    url = f"{live_server.url}/comms/alerts/alertmanager/"
    posters = [
        subprocess.Popen(
            [sys.executable, "-c", _POSTER, url, TOKEN],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=False,
        )
        for _ in range(6)
    ]
    for poster in posters:
        poster.stdin.write(body)
        poster.stdin.close()
    statuses = sorted(int(p.stdout.read()) for p in posters)
    for poster in posters:
        poster.wait(timeout=60)
    assert statuses == [200] * 5 + [201]
    incident = Incident.objects.get()
    assert InboundAlert.objects.get().deliveries == 6
    assert sum(body.startswith("Opened from") for body in timeline(incident)) == 1
    assert OutboxMessage.objects.filter(recipient=comms_lead.email).count() == 1
