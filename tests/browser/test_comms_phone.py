"""The incident room and the public status page on a phone (390 x 844, Chromium), as the
communications lead and a member of the public read them at 3 a.m. Each page is saved as a
screenshot (DATA_DIR/screenshots: data/test/screenshots under the test settings) and
checked for what must be on it: the status page's active incident in the first screen, the
room's draft form first with the due time and the time left, every control labelled, and
nothing wider than the screen."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from breakglass.access.models import CriticalService, Team
from comms import incidents, updates
from comms.defaults import DEFAULT_TEMPLATES
from comms.models import UpdateTemplate
from tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}

# Controls without a label, by the rules a screen reader uses (tests/labels.py, in the DOM).
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(e => e.type !== 'hidden' && e.type !== 'submit')
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
               && !e.getAttribute('aria-labelledby'))
  .map(e => e.outerHTML.slice(0, 80))"""
WIDER_THAN_THE_SCREEN = "() => document.documentElement.scrollWidth - window.innerWidth"


def in_first_screen(page, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    return box is not None and box["y"] + min(box["height"], 40) <= PHONE["height"]


@pytest.fixture
def phone(_browser):
    context = _browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.set_default_timeout(15000)
    violations = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.csp_violations = violations
    yield page
    context.close()


@pytest.fixture
def services(transactional_db):
    # Transactional tests flush the tables, data migrations included: put the templates back.
    for name, state, audience, body in DEFAULT_TEMPLATES:
        UpdateTemplate.objects.get_or_create(
            name=name, defaults={"state": state, "audience": audience, "body": body}
        )
    team = Team.objects.create(name="Platform", slug="platform")
    # As many as the demo has: on a phone the list is longer than a screen.
    names = [
        ("dns", "DNS (authoritative)"),
        ("sso", "Identity provider (SSO)"),
        ("vpn", "VPN"),
        ("chat", "Team chat"),
        ("ci", "CI/CD"),
        ("db", "Primary database"),
        ("k8s", "Kubernetes control plane"),
        ("mail", "E-mail"),
        ("ticketing", "Ticketing"),
        ("paging", "Paging"),
        ("billing", "Billing"),
        ("status", "Status page publishing"),
        ("storage", "Object storage"),
        ("cdn", "CDN"),
        ("api", "Public API"),
        ("search", "Search"),
    ]
    return {
        slug: CriticalService.objects.create(name=name, slug=slug, owning_team=team, tier=1)
        for slug, name in names
    }


def sev1_with_a_published_update(services, commander, comms_lead):
    incident = incidents.incident_declare(
        title="DNS resolution failing",
        severity=1,
        actor=commander,
        commander=commander,
        comms_lead=comms_lead,
        services=[(services["dns"], "major_outage"), (services["sso"], "degraded_performance")],
    )
    [template] = [
        body
        for _, state, audience, body in DEFAULT_TEMPLATES
        if (state, audience)
        == (
            "investigating",
            "external",
        )
    ]
    update = updates.status_update_draft(
        incident=incident, audience="external", body=template, actor=comms_lead
    )
    updates.status_update_review(update=update, reviewer=commander, approve=True)
    updates.status_update_publish(update=update, actor=comms_lead)
    return incident, update


def test_the_incident_room_on_a_phone_as_the_communications_lead(
    live_server, phone, services, commander, comms_lead
):
    incident, published = sev1_with_a_published_update(services, commander, comms_lead)
    # A second draft waits for review: its review and override forms are on the page too.
    updates.status_update_draft(
        incident=incident, audience="external", body="Still on it.", actor=comms_lead
    )
    log_in(phone, live_server.url, comms_lead)
    phone.goto(f"{live_server.url}/comms/incidents/{incident.reference}/")
    shot = screenshot(phone, "incident-room-comms-lead-phone")

    assert phone.evaluate(WIDER_THAN_THE_SCREEN) <= 0, shot
    assert phone.evaluate(UNLABELLED) == []
    # The draft form comes first, with the due time and the time left above it.
    assert in_first_screen(phone, "#h-draft")
    due = published.next_update_at
    heading = phone.locator("#draft .due").inner_text()
    assert f"Next external update due {timezone.localtime(due):%H:%M} UTC" in heading
    assert "minutes left" in heading
    assert phone.locator("#id_template").input_value()  # the state's template is ready
    cadence = phone.locator("#cadence .due")
    assert cadence.is_visible() and "minutes left" in cadence.inner_text()
    assert phone.csp_violations == []


def test_a_late_update_is_red_on_a_phone(live_server, phone, services, commander, comms_lead):
    incident, published = sev1_with_a_published_update(services, commander, comms_lead)
    log_in(phone, live_server.url, comms_lead)
    with time_machine.travel(published.next_update_at + timedelta(minutes=7)):
        phone.goto(f"{live_server.url}/comms/incidents/{incident.reference}/")
        shot = screenshot(phone, "incident-room-late-phone")
    late = phone.locator("#cadence .due.late")
    assert "LATE BY 7 MINUTES" in late.inner_text().replace("\xa0", " ")
    colour = late.locator(".time-left").evaluate("e => getComputedStyle(e).color")
    assert colour == "rgb(185, 28, 28)", shot
    assert phone.evaluate(WIDER_THAN_THE_SCREEN) <= 0, shot


def test_the_status_page_on_a_phone_shows_the_active_incident_first(
    live_server, phone, services, commander, comms_lead
):
    sev1_with_a_published_update(services, commander, comms_lead)
    responses = []
    phone.on("response", lambda r: responses.append((r.url, r.status)))
    phone.goto(f"{live_server.url}/status/")
    shot = screenshot(phone, "status-page-active-incident-phone")

    assert phone.evaluate(WIDER_THAN_THE_SCREEN) <= 0, shot
    assert in_first_screen(phone, "#h-active"), shot
    assert in_first_screen(phone, ".incident h3"), shot
    first = phone.locator(".incident").first.inner_text()
    assert "DNS resolution failing" in first
    assert "Investigating — We are looking into a major outage of DNS (authoritative)" in first
    # The long list of services comes after.
    active, listed = (
        phone.locator(f"#{h}").bounding_box()["y"] for h in ("h-active", "h-services")
    )
    assert active < listed
    # The favicon is linked and served from here.
    href = phone.locator("link[rel=icon]").get_attribute("href")
    assert href.endswith("favicon.svg") and href.startswith("/static/")
    phone.goto(f"{live_server.url}{href}")
    assert (f"{live_server.url}{href}", 200) in responses
    assert phone.csp_violations == []
