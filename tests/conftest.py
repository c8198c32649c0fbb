"""Shared fixtures: named people, OTP-verified clients, and access to real services.

Integration tests (marker `integration`) need real PostgreSQL/Redis/a Celery worker and
browser tests (marker `browser`) need /usr/bin/chromium. Outside CI they are skipped
with the reason printed; with CI=true a missing service fails the run instead.
"""

from __future__ import annotations

import os

import pytest

from breakglass.accounts import roles
from devkit.factories import user_make, verified_client
from devkit.smtp import SmtpSink
from tests import services


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


@pytest.fixture
def smtp_sink():
    """A real SMTP server on loopback (devkit/smtp.py), stopped after the test."""
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def trust(db, django_capture_on_commit_callbacks):
    """Bootstrapped keys: three roots (threshold 2), an issuer key, bundle version 1,
    published (each test directory's autouse `_trust_dir` says where)."""
    from breakglass.keys.services import keys_bootstrap

    with django_capture_on_commit_callbacks(execute=True):
        keys_bootstrap()


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
