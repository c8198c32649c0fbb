"""Reads for drills: the kill switch, who may take part, what to target, and progress."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import Count, Max, Q
from django.utils import timezone
from django_otp import devices_for_user

from breakglass.access.models import BackupPath
from breakglass.accounts import roles
from comms.selectors import real_sev1_open
from drills.models import BlackoutWindow, Drill, DrillParticipant, DrillRun, KillSwitchEvent

User = get_user_model()

# How recently exercising a path counts as "has done it" when picking human participants.
RECENT_EXERCISE = timedelta(days=90)
SEV1_REASON = "a real SEV1 incident is open; drills stay off until it is resolved"


# --- Who may do what with drills: the one home of these rules --------------------------
# `None` is the scheduler or a management command (the operator already owns the server).
# Services enforce them (DrillNotAllowed); views only show what they allow.


def drill_coordinate_allowed(*, user) -> bool:
    """Run, schedule, facilitate, black out and release drills: drill coordinators."""
    return user is None or roles.user_has_role(user, roles.DRILL_COORDINATOR)


def killswitch_engage_allowed(*, user) -> bool:
    """Stopping every drill is a safety action, so incident commanders may too (in a
    real incident a drill is noise); releasing it again is for coordinators."""
    return drill_coordinate_allowed(user=user) or roles.user_has_role(
        user, roles.INCIDENT_COMMANDER
    )


def drill_participations_open(*, user):
    """This person's places in human drills and game-day runs that have not finished."""
    return DrillParticipant.objects.filter(
        user=user, run__state__in=[DrillRun.State.PENDING, DrillRun.State.RUNNING]
    ).select_related("run__path")


def drill_participations_waiting(*, user):
    """The open places where this person still has something to do (not started, or
    started and not yet verified)."""
    return drill_participations_open(user=user).filter(
        state__in=[DrillParticipant.State.INVITED, DrillParticipant.State.STARTED]
    )


def drills_signoff_waiting_for(*, user):
    """Active drills this person owns that wait for their sign-off before scheduled runs
    start (`drill_blocked_reason`; only the owner signs off, `drill_signoff`)."""
    return Drill.objects.filter(
        owner=user, is_active=True, requires_signoff=True, signed_off_at__isnull=True
    )


def real_sev1_is_open() -> bool:
    """A real (non-drill) SEV1 is open, as the comms area records it."""
    return real_sev1_open()


def killswitch_latest() -> KillSwitchEvent | None:
    return KillSwitchEvent.objects.select_related("actor").first()


def killswitch_state() -> tuple[bool, str]:
    """(engaged, why). Engaged by hand, or automatically while a real SEV1 is open."""
    latest = killswitch_latest()
    if latest is not None and latest.engaged:
        who = latest.actor.get_username() if latest.actor else "system"
        return True, f"engaged by {who} at {latest.created_at:%Y-%m-%d %H:%M} UTC: {latest.reason}"
    if real_sev1_is_open():
        return True, SEV1_REASON
    return False, ""


def blackout_current(*, now: datetime | None = None) -> BlackoutWindow | None:
    now = now or timezone.now()
    return BlackoutWindow.objects.filter(starts_at__lte=now, ends_at__gt=now).first()


def drill_blocked_reason(*, drill: Drill | None = None, now: datetime | None = None) -> str | None:
    """Why a new run may not start now, or None."""
    engaged, why = killswitch_state()
    if engaged:
        return f"Kill switch {why}"
    window = blackout_current(now=now)
    if window is not None:
        return f"Blackout window until {window.ends_at:%Y-%m-%d %H:%M} UTC: {window.reason}"
    if drill is not None:
        if not drill.is_active:
            return f"Drill {drill.name} is inactive"
        if drill.requires_signoff and drill.signed_off_at is None:
            return f"Drill {drill.name} is waiting for its owner's sign-off"
    return None


def drill_target_paths(*, drill: Drill) -> list[BackupPath]:
    active = BackupPath.objects.filter(is_active=True).select_related("service")
    if drill.selection == Drill.Selection.ALL:
        return list(active)
    if drill.selection == Drill.Selection.TIER1:
        return list(active.filter(service__tier=1))
    return list(drill.paths.filter(is_active=True).select_related("service"))


def approver_pool(*, path: BackupPath) -> tuple[list[str], list[tuple[str, str]]]:
    """(usable approver names, [(name, why not usable)]) for the path's approver group."""
    usable, unusable = [], []
    for user in path.approver_group.user_set.order_by("username"):
        name = user.get_username()
        if not user.is_active:
            unusable.append((name, "account disabled"))
        elif not any(True for _ in devices_for_user(user, confirmed=True)):
            unusable.append((name, "no confirmed OTP device"))
        else:
            usable.append(name)
    return usable, unusable


def _owning_member_ids(path: BackupPath) -> set[int]:
    return set(path.service.owning_team.members.values_list("pk", flat=True))


def participants_pick(
    *, path: BackupPath, count: int, now: datetime | None = None, exclude: tuple = ()
) -> list:
    """Pick `count` eligible responders for a human drill of `path`.

    Eligible: active members of the path's responder group with a confirmed OTP device.
    Preferred, in order: people who never exercised the path or not in 90 days, then
    people outside the team that owns the service (spreading the knowledge is the point:
    the bus factor), then whoever exercised it longest ago; username breaks ties so the
    pick is deterministic.
    """
    now = now or timezone.now()
    last_done = dict(
        DrillParticipant.objects.filter(run__path=path, state=DrillParticipant.State.VERIFIED)
        .values_list("user_id")
        .annotate(last=Max("verified_at"))
    )
    owners = _owning_member_ids(path)
    candidates = []
    for user in path.responder_group.user_set.filter(is_active=True).order_by("username"):
        if user.pk in exclude or not any(True for _ in devices_for_user(user, confirmed=True)):
            continue
        last = last_done.get(user.pk)
        recent = last is not None and now - last < RECENT_EXERCISE
        candidates.append(
            ((recent, user.pk in owners, last or datetime.min.replace(tzinfo=now.tzinfo)), user)
        )
    candidates.sort(key=lambda item: (item[0], item[1].username))
    return [user for _, user in candidates[:count]]


def gameday_participants_pick(*, paths: list[BackupPath], count: int) -> list:
    """Up to `count` people for a game day over `paths`, chosen by `participants_pick`'s
    rules (eligible responders with an OTP device; those who have not exercised the path
    recently and those outside the owning team first), taking from each path in turn so
    every path's responders are represented."""
    picked: list = []
    remaining = list(paths)
    while remaining and len(picked) < count:
        for path in list(remaining):
            if len(picked) >= count:
                break
            more = participants_pick(path=path, count=1, exclude=tuple(u.pk for u in picked))
            if more:
                picked.extend(more)
            else:
                remaining.remove(path)
    return picked


def run_with_steps(*, run_id: int) -> DrillRun:
    return (
        DrillRun.objects.select_related("path__service", "drill", "game_day", "participant")
        .prefetch_related("steps", "participants__user")
        .get(pk=run_id)
    )


def runs_recent(*, limit: int = 25):
    return DrillRun.objects.select_related("path__service", "drill").order_by("-created_at")[:limit]


def gameday_progress(*, game_day) -> dict:
    counts = dict(
        game_day.runs.values_list("state").annotate(n=Count("id")).values_list("state", "n")
    )
    total = sum(counts.values())
    finished = sum(counts.get(s, 0) for s in DrillRun.FINISHED)
    per_path = list(
        game_day.runs.values("path__slug")
        .annotate(
            total=Count("id"),
            passed=Count("id", filter=Q(state=DrillRun.State.PASSED)),
            failed=Count("id", filter=Q(state=DrillRun.State.FAILED)),
            running=Count("id", filter=Q(state=DrillRun.State.RUNNING)),
        )
        .order_by("path__slug")
    )
    return {
        "id": game_day.pk,
        "name": game_day.name,
        "total": total,
        "finished": finished,
        "percent": (finished * 100 // total) if total else 100,
        "states": {state: counts.get(state, 0) for state in DrillRun.State.values},
        "paths": [
            {
                "path": row["path__slug"],
                "total": row["total"],
                "passed": row["passed"],
                "failed": row["failed"],
                "running": row["running"],
            }
            for row in per_path
        ],
        "done": total > 0 and finished == total,
    }
