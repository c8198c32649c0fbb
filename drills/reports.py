"""The drill report: coverage, staleness, time to access, pass rate, people and the
resilience score over a window, as a dict (JSON), CSV, HTML with inline SVG charts, and
e-mail. All figures are integers (milliseconds, days, percent) so the JSON is canonical.

Resilience score (documented in docs/drills.md): each active path scores 100 if its last
passing drill is at most 30 days old, falling linearly to 0 at 90 days (and 0 if it never
passed); the total is the average weighted by service tier (tier 1 counts 3, tier 2
counts 2, tier 3 counts 1). Each active sealed kit counts like a tier-1 path (weight 3):
its "pass" is the last time it was proven to open, by a reconstruction drill or by k
custodians' checks (drills/kits.py).
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from xml.sax.saxutils import escape

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe

from breakglass.access.models import BackupPath
from breakglass.accounts.roles import DRILL_COORDINATOR
from breakglass.outbox.services import email_enqueue
from drills.kits import kit_report_rows
from drills.models import DrillParticipant, DrillRun, DrillStep

FRESH_DAYS = 30
STALE_DAYS = 90
TIER_WEIGHT = {1: 3, 2: 2, 3: 1}
# The kit is the last way into every service it covers when Breakglass is down.
KIT_WEIGHT = 3

CSV_FIELDS = [
    "path",
    "service",
    "tier",
    "runs",
    "passed",
    "failed",
    "pass_rate_percent",
    "last_pass",
    "days_since_pass",
    "stale",
    "tta_p50_ms",
    "tta_p90_ms",
    "tta_previous_p50_ms",
    "people",
    "people_outside_team",
    "score",
    "probe",
    "propagation_last_ms",
    "propagation_max_ms",
]


def percentile(values: list[int], pct: int) -> int | None:
    """Nearest-rank percentile of integers (no interpolation, so no floats)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-pct * len(ordered) // 100))  # ceil(pct/100 * n)
    return ordered[rank - 1]


def freshness_score(days_since_pass: int | None) -> int:
    if days_since_pass is None:
        return 0
    if days_since_pass <= FRESH_DAYS:
        return 100
    if days_since_pass >= STALE_DAYS:
        return 0
    return (STALE_DAYS - days_since_pass) * 100 // (STALE_DAYS - FRESH_DAYS)


def _failure_cause(reason: str) -> str:
    """Group failures by the step that failed (the text before the first colon)."""
    head = reason.split(":", 1)[0].strip() if ":" in reason else reason.strip()
    return head[:120] or "unknown"


def report_build(*, days: int = 7, end: datetime | None = None) -> dict:
    if days < 1:
        raise ValueError("days must be at least 1")
    end = end or timezone.now()
    start = end - timedelta(days=days)
    previous_start = start - timedelta(days=days)
    paths = list(
        BackupPath.objects.filter(is_active=True)
        .select_related("service__owning_team")
        .order_by("service__tier", "service__slug", "slug")
    )
    finished = DrillRun.objects.filter(
        state__in=[DrillRun.State.PASSED, DrillRun.State.FAILED], finished_at__lte=end
    )
    window_runs = list(
        finished.filter(finished_at__gt=start).values(
            "path_id", "state", "time_to_access_ms", "failure_reason", "finished_at"
        )
    )
    previous_tta = defaultdict(list)
    for row in finished.filter(
        finished_at__gt=previous_start, finished_at__lte=start, state=DrillRun.State.PASSED
    ).values("path_id", "time_to_access_ms"):
        if row["time_to_access_ms"] is not None:
            previous_tta[row["path_id"]].append(row["time_to_access_ms"])
    last_pass = dict(
        finished.filter(state=DrillRun.State.PASSED)
        .values_list("path_id")
        .order_by()
        .annotate(last=Max("finished_at"))
    )
    ever_run = set(finished.values_list("path_id", flat=True).distinct())

    people = defaultdict(set)
    for path_id, user_id in DrillParticipant.objects.filter(
        state=DrillParticipant.State.VERIFIED, verified_at__gt=start, verified_at__lte=end
    ).values_list("run__path_id", "user_id"):
        people[path_id].add(user_id)
    for path_id, user_id in finished.filter(
        finished_at__gt=start, state=DrillRun.State.PASSED, participant__isnull=False
    ).values_list("path_id", "participant_id"):
        people[path_id].add(user_id)
    team_members = defaultdict(set)
    User = get_user_model()
    for team_id, user_id in User.teams.through.objects.values_list("team_id", "user_id"):
        team_members[team_id].add(user_id)

    # Revocation propagation (drill probes of the real target): from the re-seal until the
    # real target refused the drill credential, per run, oldest first.
    propagation = defaultdict(list)
    for path_id, evidence in (
        DrillStep.objects.filter(
            name__in=("ssh_reseal",),
            state=DrillStep.State.PASSED,
            run__finished_at__gt=start,
            run__finished_at__lte=end,
        )
        .order_by("run__finished_at")
        .values_list("run__path_id", "evidence")
    ):
        if isinstance(evidence, dict) and type(evidence.get("propagation_ms")) is int:
            propagation[path_id].append(evidence["propagation_ms"])

    by_path = defaultdict(list)
    for row in window_runs:
        by_path[row["path_id"]].append(row)
    failures = Counter()
    rows, weighted, weights = [], 0, 0
    for path in paths:
        runs = by_path.get(path.pk, [])
        passed = [r for r in runs if r["state"] == DrillRun.State.PASSED]
        failed = [r for r in runs if r["state"] == DrillRun.State.FAILED]
        for r in failed:
            failures[_failure_cause(r["failure_reason"])] += 1
        tta = [r["time_to_access_ms"] for r in passed if r["time_to_access_ms"] is not None]
        last = last_pass.get(path.pk)
        days_since = (end - last).days if last else None
        score = freshness_score(days_since)
        weight = TIER_WEIGHT.get(path.service.tier, 1)
        weighted += score * weight
        weights += weight
        who = people.get(path.pk, set())
        owners = team_members.get(path.service.owning_team_id, set())
        rows.append(
            {
                "path": path.slug,
                "name": path.name,
                "service": path.service.slug,
                "tier": path.service.tier,
                "runs": len(runs),
                "passed": len(passed),
                "failed": len(failed),
                "pass_rate_percent": (len(passed) * 100 // len(runs)) if runs else None,
                "passed_in_window": bool(passed),
                "never_drilled": path.pk not in ever_run,
                "last_pass": last.isoformat() if last else None,
                "days_since_pass": days_since,
                "stale": days_since is None or days_since > STALE_DAYS,
                "tta_p50_ms": percentile(tta, 50),
                "tta_p90_ms": percentile(tta, 90),
                "tta_previous_p50_ms": percentile(previous_tta.get(path.pk, []), 50),
                "people": len(who),
                "people_outside_team": len(who - owners),
                "score": score,
                "probe": bool(path.probe_ssh_host),
                "propagation_last_ms": spread[-1] if (spread := propagation.get(path.pk)) else None,
                "propagation_max_ms": max(spread) if spread else None,
            }
        )
    kits = kit_report_rows(end=end)
    for row in kits:
        row["score"] = freshness_score(row["days_since_proven"])
        weighted += row["score"] * KIT_WEIGHT
        weights += KIT_WEIGHT
    services = defaultdict(bool)
    for row in rows:
        services[row["service"]] |= row["passed_in_window"]
    total_runs = len(window_runs)
    total_passed = sum(1 for r in window_runs if r["state"] == DrillRun.State.PASSED)
    return {
        "window": {"start": start.isoformat(), "end": end.isoformat(), "days": days},
        "coverage": {
            "paths_passed": sum(1 for r in rows if r["passed_in_window"]),
            "paths_total": len(rows),
            "services_passed": sum(1 for v in services.values() if v),
            "services_total": len(services),
            "never_drilled": [r["path"] for r in rows if r["never_drilled"]],
            "stale": [r["path"] for r in rows if r["stale"]],
        },
        "runs": {
            "total": total_runs,
            "passed": total_passed,
            "failed": total_runs - total_passed,
            "pass_rate_percent": (total_passed * 100 // total_runs) if total_runs else None,
        },
        "failure_reasons": [{"cause": c, "count": n} for c, n in failures.most_common()],
        "resilience_score": (weighted // weights) if weights else 0,
        "paths": rows,
        "kits": kits,
        "weekly": _weekly(start=start, end=end),
    }


def _weekly(*, start: datetime, end: datetime) -> list[dict]:
    """Passed/failed runs per 7-day bucket, oldest first (the pass-rate trend chart)."""
    buckets = []
    cursor = start
    while cursor < end:
        upper = min(cursor + timedelta(days=7), end)
        qs = DrillRun.objects.filter(finished_at__gt=cursor, finished_at__lte=upper)
        buckets.append(
            {
                "start": cursor.date().isoformat(),
                "passed": qs.filter(state=DrillRun.State.PASSED).count(),
                "failed": qs.filter(state=DrillRun.State.FAILED).count(),
            }
        )
        cursor = upper
    return buckets


# --- Renderers -----------------------------------------------------------------------------


def report_csv(report: dict) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in report["paths"]:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in CSV_FIELDS})
    return out.getvalue()


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    # Safe: the numbers are ints we computed and every piece of text was escaped above.
    return mark_safe(  # noqa: S308
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def svg_staleness(report: dict) -> str:
    """Days since each path's last pass; green up to 30, amber to 90, red beyond or never."""
    rows = report["paths"]
    bar_h, label_w, chart_w = 18, 210, 360
    height = bar_h * len(rows) + 30
    scale_days = 120
    body = []
    for i, row in enumerate(rows):
        y = 10 + i * bar_h
        days = row["days_since_pass"]
        length = chart_w if days is None else min(days, scale_days) * chart_w // scale_days
        colour = (
            "#b91c1c"
            if row["stale"]
            else ("#b45309" if days is not None and days > FRESH_DAYS else "#15803d")
        )
        label = "never passed" if days is None else f"{days} d"
        body.append(
            f'<text x="0" y="{y + 13}" font-size="12" fill="#111827">{escape(row["path"])}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{max(length, 2)}" height="{bar_h - 5}" '
            f'fill="{colour}"/>'
            f'<text x="{label_w + max(length, 2) + 4}" y="{y + 13}" font-size="11" '
            f'fill="#374151">{label}</text>'
        )
    x90 = label_w + STALE_DAYS * chart_w // scale_days
    body.append(
        f'<line x1="{x90}" y1="5" x2="{x90}" y2="{height - 15}" stroke="#b91c1c" '
        f'stroke-dasharray="4 3"/><text x="{x90 - 20}" y="{height - 2}" font-size="10" '
        f'fill="#b91c1c">90 days</text>'
    )
    return _svg(label_w + chart_w + 90, height, body, "Days since last passing drill")


def svg_time_to_access(report: dict) -> str:
    """p50 (solid) and p90 (light) time to a verified credential per path, in seconds."""
    rows = [r for r in report["paths"] if r["tta_p90_ms"] is not None]
    bar_h, label_w, chart_w = 18, 210, 360
    height = bar_h * max(len(rows), 1) + 20
    top = max([r["tta_p90_ms"] for r in rows] + [1])
    body = []
    for i, row in enumerate(rows):
        y = 10 + i * bar_h
        p90 = row["tta_p90_ms"] * chart_w // top
        p50 = row["tta_p50_ms"] * chart_w // top
        body.append(
            f'<text x="0" y="{y + 13}" font-size="12" fill="#111827">{escape(row["path"])}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{max(p90, 1)}" height="{bar_h - 5}" '
            f'fill="#bfdbfe"/><rect x="{label_w}" y="{y + 2}" width="{max(p50, 1)}" '
            f'height="{bar_h - 5}" fill="#1d4ed8"/>'
            f'<text x="{label_w + max(p90, 1) + 4}" y="{y + 13}" font-size="11" fill="#374151">'
            f"p50 {_seconds(row['tta_p50_ms'])} / p90 {_seconds(row['tta_p90_ms'])}</text>"
        )
    if not rows:
        body.append('<text x="0" y="15" font-size="12" fill="#6b7280">No passing runs.</text>')
    return _svg(label_w + chart_w + 160, height, body, "Time to access per path")


def svg_weekly(report: dict) -> str:
    """Passed (green) and failed (red) runs per week: the pass-rate trend."""
    weeks = report["weekly"]
    col_w, chart_h = 46, 120
    top = max([w["passed"] + w["failed"] for w in weeks] + [1])
    body = []
    for i, week in enumerate(weeks):
        x = 10 + i * col_w
        ok_h = week["passed"] * chart_h // top
        bad_h = week["failed"] * chart_h // top
        body.append(
            f'<rect x="{x}" y="{10 + chart_h - ok_h}" width="{col_w - 12}" height="{ok_h}" '
            f'fill="#15803d"/><rect x="{x}" y="{10 + chart_h - ok_h - bad_h}" '
            f'width="{col_w - 12}" height="{bad_h}" fill="#b91c1c"/>'
            f'<text x="{x}" y="{chart_h + 25}" font-size="9" fill="#374151">'
            f"{escape(week['start'][5:])}</text>"
        )
    return _svg(20 + col_w * max(len(weeks), 1), chart_h + 32, body, "Passed and failed per week")


def _seconds(ms: int | None) -> str:
    if ms is None:
        return "-"
    return f"{ms // 1000}.{(ms % 1000) // 100}s"


def report_context(report: dict) -> dict:
    return {
        "report": report,
        "chart_staleness": svg_staleness(report),
        "chart_tta": svg_time_to_access(report),
        "chart_weekly": svg_weekly(report),
        "base_url": settings.BREAKGLASS_BASE_URL,
    }


def report_html(report: dict) -> str:
    """A standalone HTML document (the e-mail and `drill_report --format html`)."""
    return render_to_string("drills/report_document.html", report_context(report))


def report_text(report: dict) -> str:
    cov = report["coverage"]
    lines = [
        f"Drill report, last {report['window']['days']} days",
        f"Resilience score: {report['resilience_score']}/100",
        f"Coverage: {cov['paths_passed']}/{cov['paths_total']} paths, "
        f"{cov['services_passed']}/{cov['services_total']} services with a passing drill",
        f"Never drilled: {', '.join(cov['never_drilled']) or 'none'}",
        f"Stale (no pass in 90 days): {', '.join(cov['stale']) or 'none'}",
        f"Pass rate: {report['runs']['pass_rate_percent']}% of {report['runs']['total']} runs",
        "",
        "Failure reasons:",
        *[f"  {f['count']} x {f['cause']}" for f in report["failure_reasons"]],
        "",
        "Per path: days since pass, p50/p90 time to access, people (outside team):",
    ]
    for row in report["paths"]:
        days = "never" if row["days_since_pass"] is None else f"{row['days_since_pass']} d"
        lines.append(
            f"  {row['path']}: {days}{' STALE' if row['stale'] else ''}, "
            f"{_seconds(row['tta_p50_ms'])}/{_seconds(row['tta_p90_ms'])}, "
            f"{row['people']} ({row['people_outside_team']})"
        )
    lines += ["", "Sealed kits: custodians checked in 90 days, last reconstruction:"]
    for row in report["kits"]:
        lines.append(
            f"  {row['kit']}{' RED' if row['red'] else ''}: {row['checked_in_90_days']} of "
            f"{row['threshold']} needed, "
            f"{(row['last_reconstruction'] or 'never')[:10]}"
        )
    if not report["kits"]:
        lines.append("  none: nobody can be issued anything while Breakglass is down")
    lines += ["", f"{settings.BREAKGLASS_BASE_URL}/drills/report/"]
    return "\n".join(lines)


def report_recipients() -> list[str]:
    """Drill coordinators and the members of every team that owns a drilled path."""
    User = get_user_model()
    emails = set(
        User.objects.filter(groups__name=DRILL_COORDINATOR, is_active=True).values_list(
            "email", flat=True
        )
    )
    emails |= set(
        User.objects.filter(
            teams__services__backup_paths__is_active=True, is_active=True
        ).values_list("email", flat=True)
    )
    return sorted(e for e in emails if e)


def report_send(*, days: int = 7, end: datetime | None = None) -> int:
    """E-mail the report through the outbox; returns how many recipients were queued."""
    end = end or timezone.now()
    report = report_build(days=days, end=end)
    subject = (
        f"Drill report: score {report['resilience_score']}/100, coverage "
        f"{report['coverage']['paths_passed']}/{report['coverage']['paths_total']} paths"
    )
    text, html = report_text(report), report_html(report)
    recipients = report_recipients()
    stamp = end.strftime("%Y%m%d%H")
    with transaction.atomic():
        for email in recipients:
            email_enqueue(
                to=email,
                key=f"drill-report:{stamp}:{days}:{email}",
                source="drills.report",
                subject=subject,
                body=text,
                html=html,
            )
    return len(recipients)
