"""The console on a phone (390x844, Chromium): the overview for each role, the approvals
queue and a pending grant are photographed into data/test/screenshots/ (BREAKGLASS_DATA_DIR)
and checked: the elements each page is for are visible inside the screen's width and
nothing scrolls sideways. The pending grant then turns into a token by itself once the
last approver approves from the queue, with the fresh code typed beside the button."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from breakglass.access.models import Grant
from devkit.factories import totp_now
from tests.browser import log_in, screenshot
from tests.project.world import world_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def world(settings, tmp_path):
    from breakglass.keys.services import keys_bootstrap

    settings.TRUST_PUBLISH_DIR = tmp_path / "trust"
    settings.BREAKGLASS_SECURITY_CONTACTS = ["security@example.test"]
    keys_bootstrap()
    return world_make()


@pytest.fixture
def phone(_browser):
    """A new phone-sized browser per person (each has its own session)."""
    contexts = []

    def open_as(user, live_server_url: str):
        context = _browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15000)
        log_in(page, live_server_url, user)
        return page

    yield open_as
    for context in contexts:
        context.close()


def assert_fits(page, *selectors: str) -> None:
    """No sideways scrolling, and each element visible within the screen's width."""
    overflow = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert overflow[0] <= overflow[1], f"{page.url} scrolls sideways: {overflow}"
    for selector in selectors:
        element = page.locator(selector).first
        assert element.is_visible(), f"{selector} is not visible on {page.url}"
        box = element.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5, (
            f"{selector} sticks out of the screen on {page.url}: {box}"
        )


OVERVIEWS = {
    # person: the sections and labels their overview must show
    "rita": (
        "#my-access",
        "#my-access >> text=left",
        "#my-access >> text=1 of 2 approvals: alex",
        "#reviews",
        "#drills-waiting",
    ),
    "bea": (
        "#approvals-waiting",
        "#approvals-waiting >> text=waiting",
        "#approvals-waiting >> a:has-text('Review and approve')",
        "#reviews",
    ),
    "ines": ("#incidents", "#incidents >> text=Next external update due", "#killswitch"),
    "cody": ("#incidents", "#incidents >> text=You are communications lead"),
    "dana": ("#nothing",),
    "ada": ("#reviews", "nav[aria-label=Areas] >> text=Audit"),
}


def test_the_overview_of_each_role_fits_a_phone(world, live_server, phone):
    for name, selectors in OVERVIEWS.items():
        page = phone(getattr(world, name), live_server.url)
        page.goto(f"{live_server.url}/")
        assert_fits(
            page,
            "h1",
            "nav[aria-label=Areas]",
            "a:has-text('Log out'), button:has-text('Log out')",
            *selectors,
        )
        screenshot(page, f"overview-{name}")


def test_a_pending_grant_and_the_approvals_queue_fit_a_phone_and_the_token_arrives(
    world, live_server, phone
):
    rita = phone(world.rita, live_server.url)
    rita.goto(f"{live_server.url}/access/grants/{world.pending.pk}/")
    assert_fits(
        rita,
        "#waiting",
        "#waiting >> text=1 of 2 approvals: alex",
        "a.button:has-text('Withdraw this request')",
        "#grant-state",
    )
    assert rita.locator("meta[http-equiv=refresh]").count() == 1
    screenshot(rita, "grant-pending")

    bea = phone(world.bea, live_server.url)
    # Minutes later: the code from logging in is no longer fresh, so the queue asks for one.
    with time_machine.travel(timezone.now() + timedelta(minutes=7), tick=True):
        bea.goto(f"{live_server.url}/access/approvals/")
        card = f"#request-{world.pending.pk}"
        assert_fits(
            bea,
            card,
            f"{card} >> text=SSO admin console returns 500 for everyone",
            f"{card} >> text=INC-2026-0042",
            f"{card} .waited",
            f"{card} >> text=1 of 2 approvals: alex",
            f"{card} input[name=sudo_otp]",
            f"{card} button:has-text('Approve')",
            f"{card} textarea[name=reason]",
            f"{card} button:has-text('Decline')",
        )
        screenshot(bea, "approvals-queue")
        bea.fill(f"{card} input[name=sudo_otp]", totp_now(world.bea))
        bea.click(f"{card} button:has-text('Approve')")
        bea.wait_for_selector(".messages")
        assert "That was the last approval" in bea.inner_text(".messages")
        assert_fits(bea, ".messages")

    # Rita's page was left open: it looks again by itself and the token appears.
    rita.wait_for_selector("#credential-text", timeout=30000)
    assert rita.locator("meta[http-equiv=refresh]").count() == 0
    assert_fits(rita, "#credential", "#credential-text")
    screenshot(rita, "grant-issued")
    world.pending.refresh_from_db()
    assert world.pending.state == Grant.State.ISSUED


def test_breaking_the_glass_on_a_phone_shows_every_problem_at_once(world, live_server, phone):
    rita = phone(world.rita, live_server.url)
    rita.goto(f"{live_server.url}/access/paths/dns-emergency/break-glass/")
    assert_fits(rita, "#path-slug", 'label:has-text("Type the path\'s slug to confirm")')
    rita.fill("input[name=lifetime_minutes]", "600")
    rita.fill("input[name=confirmation]", "dns")
    rita.click("button:has-text('Break the glass and issue now')")
    problems = rita.inner_text("#form-problems")
    assert "A reason is required" in problems
    assert "maximum of 60 minutes" in problems
    assert "type the path's slug exactly: dns-emergency" in problems
    assert_fits(rita, "#form-problems")
    screenshot(rita, "break-glass-problems")
