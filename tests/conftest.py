"""Shared fixtures: named people, OTP-verified clients, and access to real services.

Integration tests (marker `integration`) need real PostgreSQL/Redis/a Celery worker and
browser tests (marker `browser`) need /usr/bin/chromium. Outside CI they are skipped
with the reason printed; with CI=true a missing service fails the run instead.
"""

from __future__ import annotations

import os
import time

import pytest
from django.test import Client

from breakglass.accounts import roles
from breakglass.accounts.decorators import SUDO_SESSION_KEY
from tests import services
from tests.factories import user_make
from tests.smtp import smtp_sink  # noqa: F401 - fixture: a loopback SMTP server


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("integration"):
            reason = services.missing_for_integration()
            if reason:
                services.skip_or_fail(item, reason)
        if item.get_closest_marker("browser"):
            reason = services.missing_for_browser()
            if reason:
                services.skip_or_fail(item, reason)


def pytest_runtest_setup(item):
    reason = getattr(item, "breakglass_missing_service", None)
    if reason:
        pytest.fail(f"CI must provide this service: {reason}", pytrace=False)


@pytest.fixture(autouse=True)
def _private_publish_dirs(settings, tmp_path):
    """Each test publishes its own trust bundle and status site: the published bundle
    never goes back to an older version, and every test starts from version 1."""
    settings.TRUST_PUBLISH_DIR = tmp_path / "published-trust"
    settings.STATUS_SITE_DIR = tmp_path / "published-status-site"


@pytest.fixture
def responder(db):
    return user_make("rita-responder", role_names=(roles.RESPONDER,), first_name="Rita")


@pytest.fixture
def approver(db):
    return user_make("alex-approver", role_names=(roles.APPROVER,), first_name="Alex")


@pytest.fixture
def second_approver(db):
    return user_make("bea-approver", role_names=(roles.APPROVER,), first_name="Bea")


@pytest.fixture
def outsider(db):
    """Logged in and verified, but holds no role at all."""
    return user_make("oscar-outsider", first_name="Oscar")


@pytest.fixture
def commander(db):
    return user_make("ines-commander", role_names=(roles.INCIDENT_COMMANDER,), first_name="Ines")


@pytest.fixture
def comms_lead(db):
    return user_make("cody-comms", role_names=(roles.COMMS_LEAD,), first_name="Cody")


@pytest.fixture
def coordinator(db):
    return user_make("dana-drills", role_names=(roles.DRILL_COORDINATOR,), first_name="Dana")


@pytest.fixture
def administrator(db):
    return user_make(
        "ada-admin", role_names=(roles.ADMINISTRATOR,), is_staff=True, is_superuser=True
    )


def verified_client(user, *, sudo: bool = True) -> Client:
    """A test client logged in with an OTP-verified session (and fresh sudo by default)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client = Client()
    client.force_login(user)
    session = client.session
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is not None:
        session["otp_device_id"] = device.persistent_id
    if sudo:
        session[SUDO_SESSION_KEY] = time.time()
    session.save()
    return client


@pytest.fixture
def as_user():
    return verified_client


@pytest.fixture
def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def _playwright():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made
    # by the test itself are still synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def _browser(_playwright):
    from tests.browser import launch_browser

    browser = launch_browser(_playwright)
    yield browser
    browser.close()


@pytest.fixture
def page(_browser):
    context = _browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()
