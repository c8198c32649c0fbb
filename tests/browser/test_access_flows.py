"""The two access flows a person actually goes through, in a real browser:
request -> two approvers approve -> the responder copies the token; and breaking the glass
(typed confirmation, a fresh OTP) -> token shown, approvers and security notified."""

from datetime import timedelta

import jwt
import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from breakglass.access.models import Grant
from breakglass.keys.selectors import bundle_current
from breakglass.outbox.models import OutboxMessage
from breakglass.outbox.services import outbox_deliver_one
from devkit.factories import totp_now
from tests.breakglass.conftest import path_make
from tests.browser import log_in

pytestmark = pytest.mark.browser


@pytest.fixture
def keys(transactional_db, settings, tmp_path):
    from breakglass.keys.services import keys_bootstrap

    settings.TRUST_PUBLISH_DIR = tmp_path / "trust"
    settings.BREAKGLASS_SECURITY_CONTACTS = ["security@example.test"]
    keys_bootstrap()


def verify_with_bundle(token: str, audience: str) -> dict:
    # Leeway: the approvals above ran on a clock moved minutes ahead.
    kid = jwt.get_unverified_header(token)["kid"]
    [entry] = [k for k in bundle_current()["payload"]["keys"] if k["kid"] == kid]
    key = jwt.PyJWK({"kty": "OKP", "crv": "Ed25519", "x": entry["x"]}, algorithm="EdDSA")
    return jwt.decode(
        token, key.key, algorithms=["EdDSA"], audience=audience, leeway=timedelta(minutes=10)
    )


def test_request_is_approved_by_two_people_and_the_responder_copies_the_token(
    keys, live_server, page, _browser, responder, approver, second_approver
):
    path_make("sso-backup", approvals_required=2, allow_self_issue=False)
    log_in(page, live_server.url, responder)
    page.goto(f"{live_server.url}/access/")
    page.click("#path-sso-backup >> text=Request access")
    page.fill("textarea[name=reason]", "SSO admin console returns 500 for everyone")
    page.fill("input[name=incident_ref]", "INC-2026-0042")
    page.fill("input[name=lifetime_minutes]", "30")
    page.click("button:has-text('Request access')")
    page.wait_for_selector("#grant-state")
    assert "Waiting for approval" in page.inner_text("#grant-state")
    grant = Grant.objects.get()

    for person in (approver, second_approver):
        context = _browser.new_context()
        other = context.new_page()
        other.set_default_timeout(15000)
        log_in(other, live_server.url, person)
        # Some minutes later: the login's OTP is no longer fresh, so approving asks again.
        with time_machine.travel(timezone.now() + timedelta(minutes=7), tick=True):
            other.goto(f"{live_server.url}/access/approvals/")
            other.click(f"text=#{grant.pk}")
            other.click("text=Review and approve")
            other.wait_for_url("**/accounts/sudo/**")
            other.fill("input[name=otp_token]", totp_now(person))
            other.click("main button[type=submit]")
            other.wait_for_url(f"**/access/grants/{grant.pk}/approve/")
            # The approver sees who asked, why, and for which incident before approving.
            facts = other.inner_text("dl.facts")
            assert "rita-responder" in facts
            assert "SSO admin console returns 500 for everyone" in facts
            assert "INC-2026-0042" in facts
            other.click("#approve-button")
            other.wait_for_selector(".messages")
            assert "Approved." in other.inner_text(".messages")
            assert "credential-text" not in other.content()  # approvers never see the token
        context.close()

    page.reload()
    token = page.input_value("#credential-text")
    claims = verify_with_bundle(token, "sso")
    assert claims["approvers"] == ["alex-approver", "bea-approver"]
    assert claims["incident"] == "INC-2026-0042"
    assert page.get_attribute("#credential-text", "readonly") is not None


def test_breaking_the_glass_needs_confirmation_and_a_fresh_otp_and_notifies(
    keys, live_server, page, _browser, responder, approver, second_approver
):
    path_make("dns-emergency", service="dns", approvals_required=2, allow_self_issue=True)
    log_in(page, live_server.url, responder)
    # Seven minutes later the login's OTP is no longer fresh enough for breaking the glass.
    with time_machine.travel(timezone.now() + timedelta(minutes=7), tick=True):
        page.goto(f"{live_server.url}/access/")
        page.click("#path-dns-emergency >> text=Break the glass")
        page.wait_for_url("**/accounts/sudo/**")
        page.fill("input[name=otp_token]", totp_now(responder))
        page.click("main button[type=submit]")
        page.wait_for_url("**/break-glass/")

        page.fill("textarea[name=reason]", "Zone apex records deleted")
        page.fill("input[name=confirmation]", "dns")
        page.click("button:has-text('Break the glass')")
        assert "type the path's slug exactly: dns-emergency" in page.inner_text(
            ".alert[role=alert]"
        )
        assert not Grant.objects.exists()

        page.fill("textarea[name=reason]", "Zone apex records deleted")
        page.fill("input[name=confirmation]", "dns-emergency")
        page.click("button:has-text('Break the glass')")
        page.wait_for_selector("#credential-text")
        assert "post-use review is now required" in page.inner_text(".messages")
        claims = verify_with_bundle(page.input_value("#credential-text"), "dns")
        assert claims["emergency"] is True

        grant = Grant.objects.get()
        assert grant.review_open
        # Deliver what the outbox holds (a worker does this in production).
        for message in OutboxMessage.objects.filter(source=f"breakglass.grant:{grant.pk}"):
            assert outbox_deliver_one(message_id=message.pk) == "delivered"
    notified = sorted(address for message in mail.outbox for address in message.to)
    assert notified == [
        "alex-approver@example.test",
        "bea-approver@example.test",
        "security@example.test",
    ]
    assert all("EMERGENCY self-issue" in message.subject for message in mail.outbox)

    # An approver closes the post-use review from the queue.
    context = _browser.new_context()
    other = context.new_page()
    log_in(other, live_server.url, approver)
    other.goto(f"{live_server.url}/access/reviews/")
    other.click(f"text=#{grant.pk}")
    other.fill("textarea[name=notes]", "Restored the zone; justified.")
    other.click("button:has-text('Close review')")
    other.wait_for_selector(".messages")
    context.close()
    grant.refresh_from_db()
    assert not grant.review_open
