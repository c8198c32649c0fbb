"""Playwright driving Debian's Chromium, plus helpers to log in like a person would.

Use the `page` fixture (defined in tests/conftest.py) together with pytest-django's
`live_server`, in tests marked `browser`.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

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


def screenshot(page, name: str) -> Path:
    """A full-page PNG under DATA_DIR/screenshots (the phone-sized checks keep theirs for a
    person to look at), private like everything in the data folder (check W001)."""
    folder = Path(settings.DATA_DIR) / "screenshots"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    path.chmod(0o600)
    assert path.stat().st_size > 0
    return path
