"""The drills console: overview with the kill switch, run reports, human drill mode,
the facilitator page, game-day progress boards and the drill report."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from breakglass.access.models import BackupPath
from breakglass.accounts.decorators import sudo_required
from drills.definitions import drill_signoff
from drills.engine import drill_run_create
from drills.errors import DrillBlocked, DrillError, DrillNotAllowed
from drills.forms import BlackoutForm, GameDayForm, KillSwitchForm, ReportWindowForm
from drills.gameday import gameday_start
from drills.human import (
    human_run_finish,
    participant_mark,
    participant_obtain_credential,
    participant_start,
    step_mark,
)
from drills.killswitch import blackout_create, killswitch_engage, killswitch_release
from drills.models import Drill, DrillParticipant, DrillRun, DrillStep, GameDay
from drills.reports import report_build, report_context, report_csv
from drills.selectors import (
    blackout_current,
    drill_coordinate_allowed,
    drill_participations_open,
    gameday_participants_pick,
    gameday_progress,
    killswitch_engage_allowed,
    killswitch_latest,
    killswitch_state,
    run_with_steps,
    runs_recent,
)


def _require_coordinator(request) -> None:
    # Fail before reading the form; the services check the same rule again.
    if not drill_coordinate_allowed(user=request.user):
        raise PermissionDenied("Only drill coordinators can do this.")


def index(request):
    engaged, why = killswitch_state()
    report = report_build(days=30)
    return render(
        request,
        "drills/index.html",
        {
            "engaged": engaged,
            "why": why,
            "latest": killswitch_latest(),
            "blackout": blackout_current(),
            "drills": Drill.objects.select_related("owner", "schedule__crontab"),
            "runs": runs_recent(),
            "game_days": GameDay.objects.all()[:10],
            "report": report,
            "is_coordinator": drill_coordinate_allowed(user=request.user),
            "may_engage_killswitch": killswitch_engage_allowed(user=request.user),
            "killswitch_form": KillSwitchForm(),
            "blackout_form": BlackoutForm(),
            "gameday_form": GameDayForm(),
            "paths": BackupPath.objects.filter(is_active=True).select_related("service"),
            "my_invitations": drill_participations_open(user=request.user),
        },
    )


@require_POST
def killswitch(request):
    form = KillSwitchForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the kill switch is engaged or released.")
        return redirect("drills:index")
    try:
        if form.cleaned_data["action"] == "engage":
            killswitch_engage(actor=request.user, reason=form.cleaned_data["reason"])
            messages.warning(request, "Kill switch engaged: running drills stop, new ones wait.")
        else:
            killswitch_release(actor=request.user, reason=form.cleaned_data["reason"])
            messages.success(request, "Kill switch released.")
    except DrillNotAllowed:
        raise  # the 403 page (DomainErrorMiddleware)
    except DrillError as exc:
        messages.error(request, str(exc))
    return redirect("drills:index")


@require_POST
def blackout(request):
    _require_coordinator(request)
    form = BlackoutForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            "Blackout window: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()),
        )
        return redirect("drills:index")
    try:
        blackout_create(actor=request.user, **form.cleaned_data)
        messages.success(request, "Blackout window added.")
    except DrillError as exc:
        messages.error(request, str(exc))
    return redirect("drills:index")


@require_POST
def run_now(request, slug: str):
    _require_coordinator(request)
    path = get_object_or_404(BackupPath, slug=slug, is_active=True)
    try:
        run = drill_run_create(path=path, actor=request.user)
    except DrillBlocked as exc:
        messages.error(request, f"Not started: {exc}")
        return redirect("drills:index")
    messages.success(request, f"Drill of {path} queued.")
    return redirect("drills:run", run_id=run.pk)


@require_POST
def signoff(request, slug: str):
    drill = get_object_or_404(Drill, slug=slug)
    try:
        drill_signoff(drill=drill, user=request.user)
        messages.success(request, f"Signed off {drill.name}.")
    except DrillError as exc:
        messages.error(request, str(exc))
    return redirect("drills:index")


def run_detail(request, run_id: int):
    run = get_object_or_404(DrillRun, pk=run_id)
    run = run_with_steps(run_id=run.pk)
    return render(
        request,
        "drills/run.html",
        {
            "run": run,
            "is_coordinator": drill_coordinate_allowed(user=request.user),
            "is_participant": run.participants.filter(user=request.user).exists(),
        },
    )


@sudo_required
def participate(request, run_id: int):
    """Drill mode: the participant gets a real drill credential the way they would in an
    outage, and the platform times them from Start to a verified credential."""
    run = get_object_or_404(DrillRun.objects.select_related("path__service"), pk=run_id)
    participant = get_object_or_404(DrillParticipant, run=run, user=request.user)
    credential = None
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "start":
                participant = participant_start(run=run, user=request.user)
            elif action == "credential":
                participant, credential = participant_obtain_credential(run=run, user=request.user)
                messages.success(
                    request,
                    f"Drill credential verified offline in "
                    f"{participant.time_to_access_ms / 1000:.1f}s.",
                )
            else:
                messages.error(request, "Unknown action.")
        except (DrillError, DrillBlocked) as exc:
            messages.error(request, str(exc))
        participant.refresh_from_db()
    return render(
        request,
        "drills/participate.html",
        {"run": run, "participant": participant, "credential": credential},
    )


def facilitate(request, run_id: int):
    _require_coordinator(request)
    run = get_object_or_404(DrillRun, pk=run_id)
    if request.method == "POST":
        try:
            what = request.POST.get("what")
            if what == "step":
                step = get_object_or_404(DrillStep, run=run, pk=request.POST.get("step"))
                step_mark(
                    step=step,
                    state=request.POST.get("state", ""),
                    reason=request.POST.get("reason", ""),
                    actor=request.user,
                )
            elif what == "participant":
                participant = get_object_or_404(
                    DrillParticipant, run=run, pk=request.POST.get("participant")
                )
                participant_mark(
                    participant=participant,
                    state=request.POST.get("state", ""),
                    notes=request.POST.get("notes", ""),
                    actor=request.user,
                )
            elif what == "finish":
                human_run_finish(run=run, actor=request.user, notes=request.POST.get("notes", ""))
                messages.success(request, "Drill finished.")
                return redirect("drills:run", run_id=run.pk)
            else:
                messages.error(request, "Unknown action.")
        except DrillError as exc:
            messages.error(request, str(exc))
        return redirect("drills:facilitate", run_id=run.pk)
    return render(request, "drills/facilitate.html", {"run": run_with_steps(run_id=run.pk)})


@require_POST
def gameday_new(request):
    _require_coordinator(request)
    form = GameDayForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Game day: check the name, paths and participants.")
        return redirect("drills:index")
    people = gameday_participants_pick(
        paths=list(form.cleaned_data["paths"]), count=form.cleaned_data["participants"]
    )
    try:
        game_day = gameday_start(
            name=form.cleaned_data["name"],
            participants=people,
            paths=list(form.cleaned_data["paths"]),
            concurrency=form.cleaned_data["concurrency"],
            actor=request.user,
        )
    except (DrillError, DrillBlocked) as exc:
        messages.error(request, str(exc))
        return redirect("drills:index")
    return redirect("drills:gameday", game_day_id=game_day.pk)


def gameday(request, game_day_id: int):
    from breakglass.keys.models import Kit
    from drills.kits import kit_drill_challenge

    game_day = get_object_or_404(GameDay, pk=game_day_id)
    done = {d.kit_id: d for d in game_day.kit_drills.all()}
    kits = [
        {
            "kit": kit,
            "challenge": kit_drill_challenge(game_day=game_day, kit=kit),
            "done": done.get(kit.pk),
        }
        for kit in Kit.objects.filter(state=Kit.State.ACTIVE).order_by("kit_id")
    ]
    return render(
        request,
        "drills/gameday.html",
        {"game_day": game_day, "progress": gameday_progress(game_day=game_day), "kits": kits},
    )


@require_POST
def gameday_kit_drill(request, game_day_id: int, kit_id: str):
    """Record a kit reconstruction drill from the proof `breakglass kit rebuild` printed."""
    from breakglass.keys.models import Kit
    from drills.kits import kit_drill_record

    _require_coordinator(request)
    game_day = get_object_or_404(GameDay, pk=game_day_id)
    kit = get_object_or_404(Kit, kit_id=kit_id)
    try:
        drill = kit_drill_record(
            game_day=game_day, kit=kit, proof=request.POST.get("proof", ""), actor=request.user
        )
    except DrillError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Kit {kit.kit_id} rebuilt by {', '.join(drill.custodians)} in {drill.seconds} s.",
        )
    return redirect("drills:gameday", game_day_id=game_day.pk)


def gameday_json(request, game_day_id: int):
    game_day = get_object_or_404(GameDay, pk=game_day_id)
    return JsonResponse(gameday_progress(game_day=game_day))


def report(request):
    form = ReportWindowForm(request.GET or None)
    days = form.cleaned_data["days"] if form.is_valid() else 7
    data = report_build(days=days)
    fmt = request.GET.get("format", "html")
    if fmt == "json":
        return HttpResponse(
            json.dumps(data, indent=2, sort_keys=True), content_type="application/json"
        )
    if fmt == "csv":
        response = HttpResponse(report_csv(data), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="drill-report-{days}d.csv"'
        return response
    return render(request, "drills/report.html", {**report_context(data), "form": form})
