"""A person takes part in a human drill in the browser: clearly labelled drill mode, a
real drill credential, verified offline, with their time to access recorded."""

from __future__ import annotations

import pytest

from breakglass.accounts import roles
from devkit.factories import user_make
from drills.definitions import drill_create
from drills.human import human_run_create
from drills.models import DrillParticipant
from tests.breakglass.conftest import path_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def human_run(settings, tmp_path):
    from breakglass.keys.services import keys_bootstrap

    settings.TRUST_PUBLISH_DIR = tmp_path / "trust"
    keys_bootstrap()
    for name in ("alex-approver", "bea-approver"):
        user_make(name, role_names=(roles.APPROVER,))
    rita = user_make("rita-responder", role_names=(roles.RESPONDER,))
    coordinator = user_make("dana-drills", role_names=(roles.DRILL_COORDINATOR,))
    path = path_make("sso-backup", service="sso")
    drill = drill_create(name="Human SSO", owner=coordinator, kind="human", paths=[path])
    return human_run_create(drill=drill, path=path, participants=[rita]), rita


def test_a_participant_breaks_the_glass_in_drill_mode(page, live_server, human_run):
    from tests.browser import log_in

    run, rita = human_run
    log_in(page, live_server.url, rita)

    page.goto(f"{live_server.url}/drills/")
    page.click(f"a[href='/drills/runs/{run.pk}/participate/']")
    assert "DRILL MODE" in page.inner_text(".drillbar")
    page.click("button:has-text('Start the drill')")
    page.click("button:has-text('Request emergency access (drill)')")

    assert "Verified in" in page.inner_text("#time-to-access")
    assert page.inner_text("#credential").count(".") == 2  # a compact JWS
    participant = DrillParticipant.objects.get(run=run, user=rita)
    assert participant.state == "verified" and participant.time_to_access_ms > 0
