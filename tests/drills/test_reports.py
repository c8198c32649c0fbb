"""Report figures checked against known history, frozen in time."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from breakglass.access.models import CriticalService, Team
from breakglass.outbox.models import OutboxMessage
from devkit.factories import user_make
from drills.models import DrillParticipant
from drills.reports import freshness_score, percentile, report_build, report_csv, report_send
from drills.seed import _run
from tests.breakglass.conftest import path_make

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def history(db):
    """a: tier 1, passes 1-3 days ago + a human drill 2 days ago + a failure 4 days ago;
    b: tier 2, last pass 20 days ago; c: tier 1, last pass 100 days ago (stale);
    d: tier 3, never drilled."""
    with time_machine.travel(NOW, tick=False):
        paths = {}
        for slug, tier in (("a", 1), ("b", 2), ("c", 1), ("d", 3)):
            paths[slug] = path_make(f"path-{slug}", service=f"svc-{slug}")
            CriticalService.objects.filter(slug=f"svc-{slug}").update(tier=tier)
        insider = user_make("ivy-insider")
        outsider = user_make("otto-outsider")
        absent = user_make("nell-noshow")
        Team.objects.get(slug="platform").members.add(insider)
        a = paths["a"]
        for days, tta in ((1, 1000), (2, 2000), (3, 3000)):
            _run(a, days_ago=days, state="passed", tta=tta, participant=outsider)
        human = _run(a, days_ago=2, state="passed", tta=60000, kind="human")
        for user, state in ((insider, "verified"), (outsider, "verified"), (absent, "no-show")):
            DrillParticipant.objects.create(
                run=human,
                user=user,
                state=state,
                verified_at=human.finished_at if state == "verified" else None,
                outside_owning_team=user != insider,
            )
        _run(a, days_ago=4, state="failed", tta=None, reason="Approver pool is real: too few")
        _run(a, days_ago=10, state="passed", tta=5000)  # the previous window
        _run(paths["b"], days_ago=20, state="passed", tta=4000)
        _run(paths["c"], days_ago=100, state="passed", tta=4000)
    return paths


def build(days=7):
    with time_machine.travel(NOW, tick=False):
        return report_build(days=days)


def row(report, slug):
    return next(r for r in report["paths"] if r["path"] == f"path-{slug}")


def test_coverage_counts_paths_and_services_with_a_pass_in_the_window(history):
    coverage = build()["coverage"]

    assert (coverage["paths_passed"], coverage["paths_total"]) == (1, 4)
    assert (coverage["services_passed"], coverage["services_total"]) == (1, 4)
    assert coverage["never_drilled"] == ["path-d"]
    assert coverage["stale"] == ["path-c", "path-d"]


def test_staleness_is_days_since_the_last_pass(history):
    report = build()

    assert row(report, "a")["days_since_pass"] == 1
    assert row(report, "b")["days_since_pass"] == 20
    assert row(report, "c")["days_since_pass"] == 100 and row(report, "c")["stale"] is True
    assert row(report, "d")["days_since_pass"] is None


def test_time_to_access_percentiles_and_trend(history):
    a = row(build(), "a")

    assert (a["tta_p50_ms"], a["tta_p90_ms"]) == (2000, 60000)
    assert a["tta_previous_p50_ms"] == 5000


def test_pass_rate_and_failure_reasons(history):
    report = build()

    assert report["runs"] == {"total": 5, "passed": 4, "failed": 1, "pass_rate_percent": 80}
    assert report["failure_reasons"] == [{"cause": "Approver pool is real", "count": 1}]
    assert row(report, "a")["pass_rate_percent"] == 80


def test_people_counts_distinct_people_and_those_outside_the_owning_team(history):
    a = row(build(), "a")

    assert a["people"] == 2  # the insider and the outsider; the no-show does not count
    assert a["people_outside_team"] == 1


def test_resilience_score_is_the_tier_weighted_freshness(history):
    # a: 100 x3, b: 100 x2, c: 0 x3, d: 0 x1 -> 500 / 9
    assert build()["resilience_score"] == 55


def test_freshness_decays_linearly_from_30_to_90_days():
    assert [freshness_score(d) for d in (None, 0, 30, 45, 60, 89, 90, 400)] == [
        0,
        100,
        100,
        75,
        50,
        1,
        0,
        0,
    ]


def test_percentile_uses_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([5, 1, 3], 50) == 3
    assert percentile(list(range(1, 11)), 90) == 9


def test_csv_has_one_row_per_path(history):
    rows = list(csv.DictReader(io.StringIO(report_csv(build()))))

    assert [r["path"] for r in rows] == ["path-a", "path-c", "path-b", "path-d"]
    assert rows[0]["tta_p50_ms"] == "2000" and rows[3]["days_since_pass"] == ""


def test_drill_report_command_writes_each_format(history, tmp_path):
    with time_machine.travel(NOW, tick=False):
        for fmt in ("html", "json", "csv"):
            call_command(
                "drill_report", "--days", "7", "--format", fmt, "--out", str(tmp_path / f"r.{fmt}")
            )

    assert json.loads((tmp_path / "r.json").read_text())["resilience_score"] == 55
    html = (tmp_path / "r.html").read_text()
    assert "<svg" in html and "1/4" in html and "<script" not in html
    assert (tmp_path / "r.csv").read_text().startswith("path,service,tier")


def test_drill_report_command_refuses_a_bad_window():
    with pytest.raises(CommandError, match="at least 1"):
        call_command("drill_report", "--days", "0")


def test_the_report_is_emailed_to_coordinators_and_path_owners(history, coordinator):
    with time_machine.travel(NOW, tick=False):
        sent = report_send(days=7)

    recipients = set(
        OutboxMessage.objects.filter(source="drills.report").values_list("recipient", flat=True)
    )
    assert sent == 2
    assert recipients == {"dana-drills@example.test", "ivy-insider@example.test"}
    message = OutboxMessage.objects.filter(source="drills.report").first()
    assert "score 55/100" in message.payload["subject"]
    assert "<svg" in message.payload["html"]
