"""Playwright driving Debian's Chromium, plus helpers to log in like a person would.

Use the `page` fixture (defined in tests/conftest.py) together with pytest-django's
`live_server`, in tests marked `browser`.
"""

from __future__ import annotations

from devkit.factories import totp_now
from tests.services import CHROMIUM

LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)


def log_in(page, live_server_url: str, user, *, password: str = "correct horse battery") -> None:
    """Password, then the OTP step, exactly as a person does it."""
    page.goto(f"{live_server_url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/verify/**")
    page.fill("input[name=otp_token]", totp_now(user))
    # Inside <main>: the header's "Log out" button is also a submit button.
    page.click("main button[type=submit]")
    page.wait_for_load_state()
