"""Game-day benchmark: N participants x M paths automated drill runs through real Redis,
real PostgreSQL and two Celery worker processes, compared with the same number of no-op
Celery tasks measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bg REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/gameday.py [--participants 200] [--paths 18] [--concurrency 8]

It creates (and drops first) its own database `<DATABASE_URL name>_gameday`, migrates it,
builds a registry of M services with one backup path each, N responders, keys and a
published bundle, then:

1. sends N*M no-op tasks (`devkit.noop_task`) and waits for every result;
2. starts a game day of N*M automated drill runs (every step real: grant issue, offline
   verification against the published bundle file, freshness, approver pool, drill-sink
   delivery, revocation and re-publication) with bounded concurrency, and waits until
   every run has finished.

It prints wall times, runs per second, the ratio to the no-op rate, and checks that
nothing was lost: every run finished, none is left pending or running.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _registry(*, participants: int, paths: int):
    from django.contrib.auth.models import Group, User
    from django.db import transaction

    from breakglass.access.models import BackupPath, CriticalService, Team
    from breakglass.accounts import roles
    from breakglass.keys.services import keys_bootstrap, ssh_ca_create
    from devkit.factories import user_make

    keys_bootstrap()
    with transaction.atomic():
        responders = Group.objects.get_or_create(name=roles.RESPONDER)[0]
        approvers = Group.objects.get_or_create(name=roles.APPROVER)[0]
        for name in ("alex", "bea", "carl"):
            user_make(name, role_names=(roles.APPROVER,))
        teams = [Team.objects.create(name=f"Team {i}", slug=f"team-{i}") for i in range(1, 5)]
        made = []
        for i in range(1, paths + 1):
            service = CriticalService.objects.create(
                name=f"Service {i}", slug=f"svc-{i}", tier=1 + i % 3, owning_team=teams[i % 4]
            )
            ssh = i % 6 == 0  # a few SSH-certificate paths among the token paths
            # Each SSH path owns its CA (a shared one is refused: backup_path_own_ssh_ca).
            ca = ssh_ca_create(name=f"gameday-ca-{i}") if ssh else None
            made.append(
                BackupPath.objects.create(
                    service=service,
                    name=f"Path {i}",
                    slug=f"path-{i}",
                    method="ssh-certificate" if ssh else "signed-token",
                    scopes=["login"] if ssh else ["read", "admin"],
                    approvals_required=2,
                    approver_group=approvers,
                    responder_group=responders,
                    ssh_principals=["breakglass"] if ssh else [],
                    ssh_ca=ca,
                )
            )
        people = User.objects.bulk_create(
            [
                User(username=f"person-{i:04d}", email=f"p{i}@example.test")
                for i in range(participants)
            ]
        )
        responders.user_set.add(*people)
    return made, list(User.objects.filter(username__startswith="person-").order_by("username"))


def main() -> int:
    from bench.common import bench_database

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument("--paths", type=int, default=18)
    parser.add_argument("--concurrency", type=int, default=8, help="game-day in-flight bound")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds before giving up")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        parser.error("DATABASE_URL must point at PostgreSQL")
    if not os.environ.get("REDIS_URL"):
        parser.error("REDIS_URL must point at Redis")

    data_dir = Path(tempfile.mkdtemp(prefix="bg-gameday-"))
    os.environ.update(
        DATABASE_URL=bench_database(os.environ["DATABASE_URL"], suffix="gameday"),
        BREAKGLASS_DATA_DIR=str(data_dir),
        CELERY_BROKER_URL=os.environ["REDIS_URL"],
        CELERY_RESULT_BACKEND=os.environ["REDIS_URL"],
        DJANGO_SETTINGS_MODULE="breakglass.project.settings",
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from breakglass.project.celery import app
    from devkit.celery import noop_task
    from devkit.workers import celery_process
    from drills.engine import drill_runs_reap
    from drills.gameday import gameday_start
    from drills.models import DrillRun

    call_command("migrate", verbosity=0)
    paths, people = _registry(participants=args.participants, paths=args.paths)
    total = len(paths) * len(people)
    print(f"registry: {len(paths)} paths, {len(people)} participants -> {total} runs")

    env = dict(
        os.environ,
        BREAKGLASS_KEK=settings.BREAKGLASS_KEK,
        SECRET_KEY=settings.SECRET_KEY,
        PYTHONUNBUFFERED="1",
    )
    app.control.purge()
    figures: dict = {"runs": total, "participants": len(people), "paths": len(paths)}
    with ExitStack() as stack:
        for n in (1, 2):
            stack.enter_context(
                celery_process(
                    "worker",
                    "--loglevel=INFO",
                    "--concurrency=1",
                    "--pool=prefork",
                    "--without-heartbeat",
                    "--without-mingle",
                    "--without-gossip",
                    f"--hostname=gameday{n}@%h",
                    env=env,
                    ready="ready",
                    log_path=data_dir / f"worker{n}.log",
                )
            )
        # 1. The yardstick: the same number of no-op tasks through the same workers.
        for result in [noop_task.delay(-1) for _ in range(10)]:
            result.get(timeout=60)
        started = time.perf_counter()
        results = [noop_task.delay(i) for i in range(total)]
        for result in results:
            result.get(timeout=600)
        noop_wall = time.perf_counter() - started
        figures["noop_wall_s"] = round(noop_wall, 2)
        figures["noop_per_s"] = round(total / noop_wall, 1)
        print(f"no-op tasks: {total} in {noop_wall:.1f}s = {total / noop_wall:.1f}/s")

        # 2. The game day.
        started = time.perf_counter()
        game_day = gameday_start(
            name="benchmark", participants=people, paths=paths, concurrency=args.concurrency
        )
        deadline = time.monotonic() + args.timeout
        last_report = 0.0
        while True:
            runs = DrillRun.objects.filter(game_day=game_day)
            finished = runs.filter(state__in=DrillRun.FINISHED).count()
            if finished == total:
                break
            if time.monotonic() > deadline:
                print(f"TIMEOUT: {finished}/{total} finished", file=sys.stderr)
                return 2
            if time.perf_counter() - last_report > 15:
                last_report = time.perf_counter()
                elapsed = last_report - started
                print(f"  {finished}/{total} after {elapsed:.0f}s ({finished / elapsed:.1f}/s)")
                drill_runs_reap()  # what beat does every minute in production
            time.sleep(0.5)
        wall = time.perf_counter() - started

    runs = DrillRun.objects.filter(game_day=game_day)
    states = {s: runs.filter(state=s).count() for s in DrillRun.State.values}
    figures.update(
        gameday_wall_s=round(wall, 2),
        runs_per_s=round(total / wall, 2),
        ratio_to_noop=round((total / wall) / (total / noop_wall), 4),
        states=states,
        lost=states["pending"] + states["running"],
        failure_reasons=sorted(
            set(runs.exclude(failure_reason="").values_list("failure_reason", flat=True))
        )[:5],
    )
    print(f"game day: {total} runs in {wall:.1f}s = {total / wall:.2f} runs/s")
    print(f"ratio drill runs / no-op tasks: {figures['ratio_to_noop']}")
    print(f"states: {states}; lost: {figures['lost']}")
    print(json.dumps(figures))
    return 0 if figures["lost"] == 0 and states["passed"] == total else 1


if __name__ == "__main__":
    raise SystemExit(main())
