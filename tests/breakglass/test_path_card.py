"""The printable card per path: what to do, what the target accepts, who approves, who
to call, for the sheet taped inside the glass."""

from __future__ import annotations

import pytest

from breakglass.access.models import BackupPath
from devkit.factories import user_make
from tests.breakglass.conftest import path_make, service_make


@pytest.fixture
def owners(db):
    owner = user_make("olga-owner", first_name="Olga", last_name="Owner")
    team = service_make("sso").owning_team
    team.members.add(owner)
    return owner


def test_the_card_says_how_to_break_the_glass_and_what_the_service_accepts(
    trust, as_user, responder, approver, second_approver, owners, settings
):
    settings.BREAKGLASS_BASE_URL = "https://bg.example.test"
    path_make("sso-backup", scopes=("read", "admin"), max_lifetime_minutes=45)
    response = as_user(responder).get("/access/paths/sso-backup/card/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "https://bg.example.test/access/paths/sso-backup/break-glass/" in html
    assert "https://bg.example.test/access/paths/sso-backup/request/" in html
    assert "<dt>Audience</dt><dd><code>sso</code></dd>" in html
    assert "breakglass verify --audience sso -" in html
    assert "<code>read</code>, <code>admin</code>" in html
    assert "at most 45 minutes" in html
    # Who approves: the group's members by name and address; who to call.
    assert "alex-approver@example.test" in html and "bea-approver@example.test" in html
    assert "security@example.test" in html
    assert "Olga Owner" in html and "olga-owner@example.test" in html
    assert "docs/operations.md</em>, section “When Breakglass is down”" in html


def test_an_ssh_path_card_names_the_login_to_use(trust, as_user, responder):
    path = path_make("db-ssh", service="db", method=BackupPath.Method.SSH_CERTIFICATE)
    path.ssh_login = "dbadmin"
    path.save()
    html = as_user(responder).get("/access/paths/db-ssh/card/").content.decode()
    assert (
        "<dt>SSH login</dt><dd><code>dbadmin</code> (principal <code>bg-db-ssh</code>)</dd>" in html
    )
    assert "ssh -i ~/.ssh/id_ed25519 -o CertificateFile=~/.ssh/db-ssh-cert.pub dbadmin@HOST" in html
    assert "Audience" not in html


def test_a_path_without_self_issue_says_so(trust, as_user, responder):
    path_make("sso-backup", allow_self_issue=False)
    html = as_user(responder).get("/access/paths/sso-backup/card/").content.decode()
    assert "This path has no emergency self-issue." in html
    assert "/break-glass/" not in html


def test_a_flawed_path_card_warns_before_anything_else(trust, as_user, responder):
    service_make("chat", depends_on=("sso",))
    path_make("sso-via-chat", requires=("chat",))
    html = as_user(responder).get("/access/paths/sso-via-chat/card/").content.decode()
    assert "depends on what it protects (sso → chat → sso)" in html


def test_the_offline_runbook_url_is_printed_when_configured(trust, as_user, responder, settings):
    settings.BREAKGLASS_OFFLINE_RUNBOOK_URL = "https://wiki.example.test/breakglass-offline"
    path_make()
    html = as_user(responder).get("/access/paths/sso-backup/card/").content.decode()
    assert "https://wiki.example.test/breakglass-offline" in html


def test_the_card_needs_a_verified_session_and_an_active_path(trust, client, as_user, responder):
    path_make()
    assert client.get("/access/paths/sso-backup/card/").status_code == 302
    assert as_user(responder).get("/access/paths/nope/card/").status_code == 404


def test_the_card_loads_nothing_from_elsewhere(trust, as_user, responder):
    path_make()
    response = as_user(responder).get("/access/paths/sso-backup/card/")
    html = response.content.decode()
    assert "<script" not in html and "style=" not in html
    assert 'href="/static/breakglass/card.css"' in html
    assert "script-src 'self'" in response["Content-Security-Policy"]
