"""Demo drills: scheduled definitions (so the demo's beat runs drills on its own) and a few
weeks of history, including a failing path, a stale path and a never-drilled one, so the
drill report is worth reading on first run. Idempotent: definitions are created once, and
history only into an empty drill database.
"""

from __future__ import annotations

import sys
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from breakglass.access.demo_data import MANAGE
from breakglass.access.models import BackupPath
from breakglass.accounts import roles
from drills.definitions import drill_create
from drills.models import (
    STEP_NAMES,
    Drill,
    DrillParticipant,
    DrillRun,
    DrillStep,
    step_names_for,
)

FLAWED = "sso-admin-via-chat"
STALE = "ticketing-admin"
NEVER = "status-page-publish"
FLAKY = "billing-ops"

DEFINITIONS = [
    # slug, name, kind, selection, paths, cron, extra
    ("tier-1-half-hourly", "Tier-1 paths, every 30 minutes", "automated", "tier-1", [],
     "*/30 * * * *", {}),
    ("all-paths-nightly", "Every path, nightly", "automated", "all", [], "15 2 * * *", {}),
    ("sso-human-quarterly", "SSO human drill, quarterly", "human", "paths", ["sso-break-glass"],
     "0 10 1 */3 *",
     {"participant_count": 2, "requires_signoff": True, "announce_minutes": 60,
      "target_seconds": 600}),
]  # fmt: skip

DEPENDENCY_REASON = (
    "Path does not depend on what it protects: Path sso/sso-admin-via-chat needs chat, which "
    "depends on sso: sso -> chat -> sso. In an outage of sso this path cannot work."
)
APPROVER_REASON = (
    "Approver pool is real: Path billing/billing-ops needs 2 approvers but only 1 of the "
    "people in group 'approver' have an active account and a confirmed OTP device (carl: no "
    "confirmed OTP device). A real request would wait forever."
)


def _owner():
    User = get_user_model()
    return (
        User.objects.filter(groups__name=roles.DRILL_COORDINATOR, is_active=True)
        .order_by("username")
        .first()
        or User.objects.filter(is_superuser=True).order_by("username").first()
    )


def _run(path, *, days_ago: float, state: str, tta: int | None, reason: str = "", **extra):
    """One finished run with its steps, as the engine would have left it."""
    finished = timezone.now() - timedelta(days=days_ago)
    started = finished - timedelta(milliseconds=(tta or 2000) + 800)
    run = DrillRun.objects.create(
        path=path,
        kind=extra.pop("kind", Drill.Kind.AUTOMATED),
        trigger=DrillRun.Trigger.SCHEDULE,
        state=state,
        created_at=started,
        started_at=started,
        finished_at=finished,
        time_to_access_ms=tta,
        failure_reason=reason,
        required_steps=list(STEP_NAMES),
        attempt=1,
        **extra,
    )
    failing = reason.split(":", 1)[0] if reason else ""
    steps = []
    for order, name in enumerate(step_names_for(path), start=1):
        step = DrillStep(run=run, name=name, order=order, started_at=started, finished_at=finished)
        if failing and step.title == failing:
            step.state, step.reason = DrillStep.State.FAILED, reason.split(": ", 1)[1]
        else:
            step.state = DrillStep.State.PASSED
            if name == "verify" and tta is not None:
                step.evidence = {"time_to_access_ms": tta}
        steps.append(step)
    DrillStep.objects.bulk_create(steps)
    return run


def _history(paths: dict[str, BackupPath]) -> int:
    User = get_user_model()
    people = {
        u.username: u for u in User.objects.filter(username__in=["rita", "nora", "ravi", "ines"])
    }
    count = 0
    for index, (slug, path) in enumerate(sorted(paths.items())):
        if slug in (NEVER,):
            continue
        if slug == FLAWED:
            for days in (2, 9, 16):
                _run(path, days_ago=days, state="failed", tta=None, reason=DEPENDENCY_REASON)
                count += 1
            continue
        if slug == STALE:
            _run(path, days_ago=120, state="passed", tta=5400)
            count += 1
            continue
        for week in range(4):
            tta = 900 + (index * 137 + week * 211) % 2600
            participant = people.get("ines") if slug == "dns-emergency-token" and week < 2 else None
            _run(path, days_ago=1 + index % 5 + week * 7, state="passed", tta=tta,
                 participant=participant)  # fmt: skip
            count += 1
        if slug == FLAKY:
            _run(path, days_ago=4, state="failed", tta=None, reason=APPROVER_REASON)
            count += 1
    sso = paths.get("sso-break-glass")
    if sso is not None and people:
        run = _run(sso, days_ago=6, state="passed", tta=142000, kind=Drill.Kind.HUMAN)
        team = set(sso.service.owning_team.members.values_list("pk", flat=True))
        for name, state, tta in (("rita", "verified", 142000), ("nora", "verified", 231000),
                                 ("ravi", "no-show", None)):  # fmt: skip
            user = people.get(name)
            if user is None:
                continue
            DrillParticipant.objects.create(
                run=run,
                user=user,
                state=state,
                outside_owning_team=user.pk not in team,
                invited_at=run.created_at - timedelta(hours=1),
                started_at=run.started_at if tta else None,
                verified_at=run.started_at + timedelta(milliseconds=tta) if tta else None,
                time_to_access_ms=tta,
            )
        count += 1
    return count


def seed_demo(*, stdout=None) -> None:
    stdout = stdout or sys.stdout
    owner = _owner()
    if owner is None:
        stdout.write("Drills: no drill coordinator or superuser yet; skipped demo drills.\n")
        return
    paths = {p.slug: p for p in BackupPath.objects.select_related("service__owning_team")}
    created = []
    with transaction.atomic():
        for slug, name, kind, selection, path_slugs, cron, extra in DEFINITIONS:
            if Drill.objects.filter(slug=slug).exists():
                continue
            targets = [paths[s] for s in path_slugs if s in paths]
            if selection == "paths" and not targets:
                continue
            drill_create(
                name=name,
                slug=slug,
                owner=owner,
                kind=kind,
                selection=selection,
                paths=targets,
                cron=cron,
                **extra,
            )
            created.append(slug)
        seeded = 0 if DrillRun.objects.exists() else _history(paths)
    stdout.write(
        f"Drills: {len(created)} new drill definitions, {seeded} runs of demo history "
        f"(flawed: {FLAWED}, stale: {STALE}, never drilled: {NEVER}). "
        f"Report: {MANAGE} drill_report --days 30 --format html --out report.html\n"
    )
