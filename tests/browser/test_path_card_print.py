"""The path card printed by Chromium: one page, every section present in the PDF's text."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from pypdf import PdfReader

from breakglass.access.models import BackupPath
from tests.breakglass.conftest import path_make
from tests.browser import log_in

pytestmark = pytest.mark.browser


@pytest.fixture
def keys(transactional_db, settings, tmp_path):
    from breakglass.keys.services import keys_bootstrap

    settings.TRUST_PUBLISH_DIR = tmp_path / "trust"
    settings.BREAKGLASS_SECURITY_CONTACTS = ["security@example.test"]
    keys_bootstrap()


def print_card(page, live_server, user, slug: str) -> str:
    log_in(page, live_server.url, user)
    page.goto(f"{live_server.url}/access/paths/{slug}/card/")
    page.emulate_media(media="print")
    # The screen-only toolbar must not print.
    assert not page.is_visible(".toolbar")
    pdf = page.pdf(format="A4", print_background=False, prefer_css_page_size=True)
    out = os.environ.get("BREAKGLASS_CARD_PDF")  # set it to keep the PDF and look at it
    if out:
        Path(out).write_bytes(pdf)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1, "the card must fit on one sheet"
    return " ".join(" ".join(p.extract_text().split()) for p in reader.pages)


def test_a_token_path_card_prints_on_one_page_with_every_section(
    keys, live_server, page, responder, approver, second_approver, settings
):
    settings.BREAKGLASS_BASE_URL = live_server.url
    path_make("sso-backup", scopes=("read", "admin"))
    text = print_card(page, live_server, responder, "sso-backup")
    for heading in (
        "BREAK IT IN THE CONSOLE",
        "WHAT THE TARGET ACCEPTS",
        "WHEN BREAKGLASS ITSELF IS DOWN",
        "WHO APPROVES",
        "WHO TO CALL",
    ):
        assert heading in text.upper()
    # A URL may wrap at the sheet's edge; its characters must all be there, in order.
    assert f"{live_server.url}/access/paths/sso-backup/break-glass/" in text.replace(" ", "")
    assert "breakglass verify --audience sso -" in text
    assert "alex-approver@example.test" in text
    assert "security@example.test" in text
    assert "Print this page" not in text


def test_an_ssh_path_card_prints_the_login(keys, live_server, page, responder, approver):
    path = path_make("db-ssh", service="db", method=BackupPath.Method.SSH_CERTIFICATE)
    path.ssh_login = "dbadmin"
    path.save()
    text = print_card(page, live_server, responder, "db-ssh")
    assert "SSH login dbadmin" in text
    assert "dbadmin@HOST" in text
