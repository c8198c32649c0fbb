"""The demo seed makes the report worth reading, and running it twice changes nothing."""

from __future__ import annotations

import io

import pytest
from django_celery_beat.models import PeriodicTask

from drills.models import Drill, DrillRun
from drills.reports import report_build

pytestmark = pytest.mark.django_db


def test_the_demo_has_schedules_a_failure_a_stale_path_and_a_never_drilled_one():
    from breakglass.access.seed import seed_demo

    seed_demo(stdout=io.StringIO())
    runs, drills = DrillRun.objects.count(), Drill.objects.count()
    seed_demo(stdout=io.StringIO())

    assert (DrillRun.objects.count(), Drill.objects.count()) == (runs, drills)
    assert PeriodicTask.objects.filter(task="drills.tasks.drill_scheduled_task").count() == 3
    report = report_build(days=30)
    assert "status-page-publish" in report["coverage"]["never_drilled"]
    assert "ticketing-admin" in report["coverage"]["stale"]
    assert any(
        f["cause"] == "Path does not depend on what it protects" for f in report["failure_reasons"]
    )
    assert any(r["people_outside_team"] for r in report["paths"])
    assert 0 < report["resilience_score"] < 100


def test_the_demo_gives_one_token_path_the_probe_scripts_run_serves(settings):
    from breakglass.access.models import BackupPath
    from breakglass.access.seed import DEMO_PROBED_PATH, seed_demo

    settings.DRILLS_DEMO_PROBE_URL = "http://127.0.0.1:8001/"
    seed_demo(stdout=io.StringIO())

    probed = BackupPath.objects.exclude(probe_url="")
    assert [(p.slug, p.method, p.probe_url) for p in probed] == [
        (DEMO_PROBED_PATH, "signed-token", "http://127.0.0.1:8001/")
    ]
