"""Incident communications as people use them, in Chromium: declare a SEV1 with its
roles, draft an update, have a second person review it, publish it; and open the static
export of the status page from disk with no server at all."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from breakglass.access.models import CriticalService, Team
from comms import incidents, updates
from comms.defaults import DEFAULT_TEMPLATES
from comms.export import status_site_export
from comms.models import Incident, StatusUpdate, UpdateTemplate
from tests.browser import log_in

pytestmark = pytest.mark.browser


@pytest.fixture
def sso(transactional_db):
    # Transactional tests flush the tables, data migrations included: put the templates back.
    for name, state, audience, body in DEFAULT_TEMPLATES:
        UpdateTemplate.objects.get_or_create(
            name=name, defaults={"state": state, "audience": audience, "body": body}
        )
    team = Team.objects.create(name="Platform", slug="platform")
    return CriticalService.objects.create(
        name="Single sign-on", slug="sso", owning_team=team, tier=1
    )


def test_declare_assign_roles_draft_review_and_publish(
    live_server, page, _browser, commander, comms_lead, responder, sso
):
    log_in(page, live_server.url, commander)
    page.goto(f"{live_server.url}/comms/declare/")
    page.fill("#id_title", "Logins failing everywhere")
    page.select_option("#id_severity", "1")
    page.click("button:has-text('Declare')")
    # A SEV1 without a communications lead is refused with a clear message.
    assert page.locator("text=cannot be declared without a communications lead").count() >= 1
    page.check(f"input[name=services][value='{sso.pk}']")
    page.select_option("#id_commander", label=commander.username)
    page.select_option("#id_comms_lead", label=comms_lead.username)
    page.click("button:has-text('Declare')")
    page.wait_for_url("**/comms/incidents/INC-*/")
    incident = Incident.objects.get()
    assert page.inner_text("#role-comms-lead") == comms_lead.username

    # Hand the commander role to someone else, then take it back: both on the timeline.
    page.select_option("#role-form select[name=role]", "commander")
    page.select_option("#role-form select[name=user]", label=responder.username)
    page.click("#role-form button")
    assert page.inner_text("#role-commander") == responder.username
    assert page.locator("#timeline .tl-role").count() == 3

    # Draft from a template, preview, save.
    page.select_option("#id_template", label="External: investigating")
    page.click("button[value=load]")
    assert "{{ impact }}" in page.input_value("#id_body")
    page.click("button[value=preview]")
    assert "We are looking into a major outage of Single sign-on." in page.inner_text("#preview")
    page.click("button[value=save]")
    update = StatusUpdate.objects.get()
    card = page.locator(f"#update-{update.pk}")
    assert "Waiting for a second person" in card.inner_text()
    assert card.locator(".publish-form").count() == 0

    # The communications lead reviews it in their own session.
    reviewer_context = _browser.new_context()
    reviewer = reviewer_context.new_page()
    try:
        log_in(reviewer, live_server.url, comms_lead)
        reviewer.goto(f"{live_server.url}/comms/incidents/{incident.reference}/")
        reviewer.click(f"#update-{update.pk} .review-form button")
        assert "Reviewed and approved" in reviewer.inner_text(f"#update-{update.pk}")
    finally:
        reviewer_context.close()

    page.reload()
    page.click(f"#update-{update.pk} .publish-form button")
    assert "Published" in page.inner_text(f"#update-{update.pk} .update-status")
    assert "Deliveries:" in page.inner_text(f"#update-{update.pk}")

    page.goto(f"{live_server.url}/status/")
    assert page.inner_text("#overall") == "Major Service Outage"
    assert "We are looking into a major outage of Single sign-on." in page.inner_text(
        "#h-active ~ *"
    )


def test_static_export_works_from_disk_with_no_server(tmp_path, page, commander, comms_lead, sso):
    incident = incidents.incident_declare(
        title="VPN flapping",
        severity=1,
        actor=commander,
        comms_lead=comms_lead,
        services=[(sso, "partial_outage")],
    )
    update = updates.status_update_draft(
        incident=incident, audience="external", body="Investigating.", actor=comms_lead
    )
    updates.status_update_review(update=update, reviewer=commander, approve=True)
    updates.status_update_publish(update=update, actor=comms_lead)
    fresh, old = tmp_path / "fresh", tmp_path / "old"
    status_site_export(out_dir=fresh)
    with time_machine.travel(timezone.now() - timedelta(hours=3)):
        status_site_export(out_dir=old)

    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto((fresh / "index.html").as_uri())
    assert page.inner_text("#overall") == "Major Service Outage"
    assert "VPN flapping" in page.content()
    assert "Static copy generated at" in page.inner_text("#generated")
    assert page.locator("#stale").is_hidden()
    # The stylesheet beside the copy applied (status colour on the banner).
    background = page.eval_on_selector("#overall", "e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(185, 28, 28)"
    assert all(url.startswith("file://") for url in requests), requests

    page.goto((old / "index.html").as_uri())
    assert page.locator("#stale").is_visible()

    page.goto((fresh / "api/v2/summary.json").as_uri())
    assert '"name": "VPN flapping"' in page.inner_text("body")
