"""`run_drill` prints each step and exits 0 only if every drilled path passed."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("autocommit_callbacks")]


def test_run_drill_on_a_healthy_path_prints_each_step_and_succeeds(healthy_path):
    out = io.StringIO()

    call_command("run_drill", "--path", "sso-backup", stdout=out)

    text = out.getvalue()
    assert text.count("[ok  ]") == 7
    assert "PASSED sso/sso-backup" in text and "1/1 paths passed" in text


def test_run_drill_all_reports_every_path_and_fails_the_flawed_one(healthy_path, flawed_path):
    out = io.StringIO()

    with pytest.raises(SystemExit) as exit_info:
        call_command("run_drill", "--all", stdout=out)

    text = out.getvalue()
    assert exit_info.value.code == 1
    assert "PASSED sso/sso-backup" in text
    assert "FAILED sso/sso-via-chat" in text and "sso -> chat -> sso" in text
    assert "1/2 paths passed" in text


def test_run_drill_names_the_known_paths_when_given_an_unknown_one(healthy_path):
    with pytest.raises(CommandError, match="Unknown path 'nope'. The paths: sso-backup."):
        call_command("run_drill", "--path", "nope")


def test_run_drill_refuses_while_the_kill_switch_is_engaged(healthy_path, coordinator):
    from drills.killswitch import killswitch_engage

    killswitch_engage(actor=coordinator, reason="maintenance")

    with pytest.raises(CommandError, match="Drills are blocked: Kill switch"):
        call_command("run_drill", "--path", "sso-backup")
