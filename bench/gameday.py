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
   every run has finished;
3. sends the N*M no-op tasks again: the ratio uses the mean of both baselines, as other
   people's load on the machine moves them.

It prints wall times, runs per second, the ratio to the no-op rate, the CPU one drill run
and one no-op task cost (the workers and their PostgreSQL backends, bench/cpu.py: far
steadier than rates on a shared machine), and checks that nothing was lost: every run
finished, none is left pending or running. The last line is `bench.common.summary_line`.
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
    from bench.common import bench_database, summary_line
    from bench.cpu import CpuMeter

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

    from breakglass.keys.models import TrustBundle
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
    database = settings.DATABASES["default"]["NAME"]
    workers = []
    with ExitStack() as stack:
        for n in (1, 2):
            workers.append(
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
            )
        meter = CpuMeter(worker_roots=[worker.pid for worker in workers], database=database)

        def noop_rate() -> tuple[float, float]:
            """The yardstick: as many no-op tasks through the same workers, all sent, then
            every result awaited. Returns (tasks/s, CPU seconds per task)."""
            meter.start()
            started = time.perf_counter()
            results = [noop_task.delay(i) for i in range(total)]
            for result in results:
                result.get(timeout=600)
            wall = time.perf_counter() - started
            return total / wall, meter.stop() / total

        for result in [noop_task.delay(-1) for _ in range(10)]:
            result.get(timeout=60)
        # 1. The baseline, measured before and after the game day: others' load on the
        # machine moves it, and the mean is fairer to both than either alone.
        noop_before, noop_cpu_before = noop_rate()
        print(f"no-op tasks before: {total} at {noop_before:.1f}/s")

        # 2. The game day.
        meter.start()
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
            meter.sample()
            time.sleep(0.5)
        wall = time.perf_counter() - started
        run_cpu = meter.stop() / total
        run_cpu_database = meter.database_share

        noop_after, noop_cpu_after = noop_rate()
        print(f"no-op tasks after:  {total} at {noop_after:.1f}/s")

    runs = DrillRun.objects.filter(game_day=game_day)
    states = {s: runs.filter(state=s).count() for s in DrillRun.State.values}
    noop = (noop_before + noop_after) / 2
    noop_cpu = (noop_cpu_before + noop_cpu_after) / 2
    figures.update(
        noop_per_s_before=round(noop_before, 1),
        noop_per_s_after=round(noop_after, 1),
        gameday_wall_s=round(wall, 2),
        runs_per_s=round(total / wall, 2),
        ratio_to_noop=round((total / wall) / noop, 4),
        cpu_ms_per_run=round(run_cpu * 1000, 1),
        cpu_share_postgresql=round(run_cpu_database, 2),
        cpu_ms_per_noop=round(noop_cpu * 1000, 2),
        states=states,
        lost=states["pending"] + states["running"],
        bundles=TrustBundle.objects.count(),
        failure_reasons=sorted(
            set(runs.exclude(failure_reason="").values_list("failure_reason", flat=True))
        )[:5],
    )
    print(f"game day: {total} runs in {wall:.1f}s = {total / wall:.2f} runs/s")
    print(
        f"CPU (2 workers and their PostgreSQL backends): {run_cpu * 1000:.1f} ms per drill run "
        f"({run_cpu_database:.0%} in PostgreSQL), {noop_cpu * 1000:.2f} ms per no-op task"
    )
    print(f"states: {states}; lost: {figures['lost']}; trust bundles signed: {figures['bundles']}")
    print(json.dumps(figures))
    ok = figures["lost"] == 0 and states["passed"] == total
    print(
        summary_line(
            f"game_day_{total}",
            figures["ratio_to_noop"],
            "no-op Celery tasks",
            target=">= 0.1x",
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
