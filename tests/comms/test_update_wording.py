"""The built-in update templates, rendered for each state and audience, read as a person
would write them: the state is not said twice ("Resolved — Resolved: ..."), a service is
named once ("DNS. Impact: DNS: Major outage."), and nothing is left blank or doubled."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from breakglass.access.models import CriticalService
from comms import incidents, updates
from comms.defaults import DEFAULT_TEMPLATES
from comms.models import IncidentState, StatusUpdate

NOW = datetime(2026, 3, 2, 14, 5, tzinfo=UTC)
NEXT = datetime(2026, 3, 2, 14, 35, tzinfo=UTC)
# The stem of each state's word: the text sits beside the state's label everywhere.
STATE_WORDS = {
    "investigating": "investigat",
    "identified": "identif",
    "monitoring": "monitor",
    "resolved": "resolv",
}
TEMPLATES = {(state, audience): body for _, state, audience, body in DEFAULT_TEMPLATES}

# What each template says for a SEV1 "DNS down" with a major outage of one service.
ONE_SERVICE = {
    ("investigating", "external"): "We are looking into a major outage of DNS (authoritative).\n"
    "We will post the next update by 2026-03-02 14:35 UTC.",
    ("identified", "external"): "We have found the cause of the problems with DNS "
    "(authoritative) and are working on a fix.\nNext update by 2026-03-02 14:35 UTC.",
    ("monitoring", "external"): "A fix for the problems with DNS (authoritative) is in place; "
    "we are watching to confirm that it holds.\nNext update by 2026-03-02 14:35 UTC.",
    ("resolved", "external"): "Everything is back to normal for DNS (authoritative). "
    "We are sorry for the disruption.",
    ("investigating", "internal"): "SEV1 INC-2026-0001, DNS down: a major outage of DNS "
    "(authoritative); cause not known yet.\nNext internal update by 2026-03-02 14:35 UTC.",
    ("identified", "internal"): "INC-2026-0001: cause found for a major outage of DNS "
    "(authoritative); fix in progress.\nNext internal update by 2026-03-02 14:35 UTC.",
    ("monitoring", "internal"): "INC-2026-0001: fix deployed; watching to confirm that it "
    "holds.\nNext internal update by 2026-03-02 14:35 UTC.",
    ("resolved", "internal"): "INC-2026-0001 is over: everything is back to normal for DNS "
    "(authoritative). Postmortem to follow.",
}


@pytest.fixture
def dns(team):
    return CriticalService.objects.create(
        name="DNS (authoritative)", slug="dns", owning_team=team, tier=1
    )


def declare(commander, comms_lead, services):
    with time_machine.travel(NOW, tick=False):
        return incidents.incident_declare(
            title="DNS down",
            severity=1,
            actor=commander,
            services=services,
            commander=commander,
            comms_lead=comms_lead,
        )


def render(incident, state: str, audience: str) -> str:
    return updates.status_update_render(
        incident=incident,
        body=TEMPLATES[(state, audience)],
        state=state,
        next_update_at=None if state == "resolved" else NEXT,
    )


def assert_reads_well(text: str, state: str, names: list[str]) -> None:
    assert STATE_WORDS[state] not in text.lower(), text
    for name in names:
        assert text.count(name) <= 1, f"{name!r} named twice: {text!r}"
    assert "{" not in text and "none" not in text.split(), text
    assert not re.search(r"\s[.,;:]|[.,;:]{2}|\(\)|  ", text), text


def test_every_default_template_has_an_expected_wording():
    assert set(TEMPLATES) == set(ONE_SERVICE)


@pytest.mark.parametrize(("state", "audience"), sorted(ONE_SERVICE))
def test_each_template_reads_naturally_for_one_service(state, audience, commander, comms_lead, dns):
    incident = declare(commander, comms_lead, [(dns, "major_outage")])
    text = render(incident, state, audience)
    assert text == ONE_SERVICE[(state, audience)]
    assert_reads_well(text, state, ["DNS (authoritative)"])


@pytest.mark.parametrize(("state", "audience"), sorted(ONE_SERVICE))
def test_each_template_reads_naturally_for_several_services_and_for_none(
    state, audience, commander, comms_lead, dns, sso, vpn
):
    several = declare(
        commander,
        comms_lead,
        [(dns, "major_outage"), (sso, "major_outage"), (vpn, "degraded_performance")],
    )
    text = render(several, state, audience)
    template = TEMPLATES[(state, audience)]
    assert_reads_well(text, state, ["DNS (authoritative)", "Single sign-on", "VPN"])
    if "{{ impact }}" in template:
        assert (
            "a major outage of DNS (authoritative) and Single sign-on, and degraded "
            "performance of VPN" in text
        )
    elif "{{ affected_services }}" in template:
        assert "DNS (authoritative), Single sign-on and VPN" in text
    text = render(declare(commander, comms_lead, []), state, audience)
    assert_reads_well(text, state, [])
    names_services = "{{ impact }}" in template or "{{ affected_services }}" in template
    assert ("our services" in text) == names_services


def test_a_service_back_to_operational_is_left_out_of_the_impact(commander, comms_lead, dns, sso):
    incident = declare(commander, comms_lead, [(dns, "operational"), (sso, "partial_outage")])
    assert render(incident, "investigating", "external").startswith(
        "We are looking into a partial outage of Single sign-on.\n"
    )


def publish(incident, state, body, comms_lead, commander) -> StatusUpdate:
    update = updates.status_update_draft(
        incident=incident, audience="external", body=body, state=state, actor=comms_lead
    )
    updates.status_update_review(update=update, reviewer=commander, approve=True)
    return updates.status_update_publish(update=update, actor=comms_lead)


def test_the_status_page_says_each_state_once(commander, comms_lead, dns):
    incident = declare(commander, comms_lead, [(dns, "major_outage")])
    for state in IncidentState.values:
        publish(incident, state, TEMPLATES[(state, "external")], comms_lead, commander)
    page = Client().get("/status/").content.decode()
    text = re.sub(r"<[^>]+>", "", page)
    assert "Investigating — We are looking into a major outage of DNS (authoritative)." in text
    assert "Identified — We have found the cause of the problems with DNS" in text
    assert "Monitoring — A fix for the problems with DNS (authoritative) is in place" in text
    assert "Resolved — Everything is back to normal for DNS (authoritative)." in text
    for label in IncidentState.labels:
        assert f"{label} — {label}" not in text


def test_an_author_who_starts_with_the_state_is_not_echoed(commander, comms_lead, dns):
    """People type "Resolved: all clear." The page and the feed then print it as written."""
    incident = declare(commander, comms_lead, [(dns, "major_outage")])
    update = publish(incident, "resolved", "Resolved: all clear.", comms_lead, commander)
    assert update.state_heading == ""
    assert StatusUpdate(incident_state="resolved", body="All clear.").state_heading == "Resolved"
    assert StatusUpdate(incident_state="resolved", body="Resolvedness").state_heading == "Resolved"
    text = re.sub(r"<[^>]+>", "", Client().get("/status/").content.decode())
    assert "Resolved: all clear." in text and "Resolved — Resolved" not in text
    feed = Client().get("/history.atom").content.decode()
    assert "Resolved: all clear." in feed and "Resolved: Resolved:" not in feed


def test_the_migration_rewords_default_templates_nobody_edited(db):
    from importlib import import_module

    from django.apps import apps

    from comms.models import UpdateTemplate

    migration = import_module("comms.migrations.0005_update_templates_read_naturally")
    old_investigating = migration.OLD_BODIES["External: investigating"]
    UpdateTemplate.objects.filter(name="External: investigating").update(body=old_investigating)
    UpdateTemplate.objects.filter(name="External: resolved").update(body="Our own words.")
    migration.reword(apps, None)
    assert (
        UpdateTemplate.objects.get(name="External: investigating").body
        == (TEMPLATES[("investigating", "external")])
    )
    assert UpdateTemplate.objects.get(name="External: resolved").body == "Our own words."


def test_the_next_update_time_is_said_once_in_mail_chat_and_on_the_page(commander, comms_lead, dns):
    """The default templates say when the next update comes; the e-mail, the chat line and
    the page add it only for a text that does not."""
    from comms.models import Webhook
    from comms.outbox_handlers import _email_payload, webhook_body

    incident = declare(commander, comms_lead, [(dns, "major_outage")])
    slack = Webhook(name="chat", url="https://chat.example/hook", format="slack")
    with time_machine.travel(NOW, tick=False):
        stated = publish(
            incident,
            "investigating",
            TEMPLATES[("investigating", "external")],
            comms_lead,
            commander,
        )
        assert stated.next_update_at == NEXT and not stated.next_update_unstated
        assert _email_payload(stated, None, "a@example.test")["body"].count("14:35") == 1
        assert webhook_body(slack, stated)["text"].count("14:35") == 1
        page = re.sub(r"<[^>]+>", "", Client().get("/status/").content.decode())
        assert page.count("14:35") == 1
    with time_machine.travel(NOW + timedelta(minutes=10), tick=False):
        bare = publish(incident, "identified", "Found it.", comms_lead, commander)
        assert bare.next_update_unstated
        assert (
            "Next update by 2026-03-02 14:45 UTC." in _email_payload(bare, None, "a@x.test")["body"]
        )
        assert "_Next update by 2026-03-02 14:45 UTC_" in webhook_body(slack, bare)["text"]
        page = re.sub(r"<[^>]+>", "", Client().get("/status/").content.decode())
        assert "next update by 14:45 UTC" in page
