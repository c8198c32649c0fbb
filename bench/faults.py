"""Fault injection with counts: a game day interrupted by a killed worker group and by a
broker that restarts empty, and emergency grants during a broker outage.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bg .venv/bin/python bench/faults.py \\
        [--participants 8] [--paths 6] [--concurrency 4]

Real PostgreSQL (its own database `<name>_faults`, dropped first), a private Redis
(tests/redis_server.py; the shared one is never touched), two Celery workers and a real
`celery beat` running the schedules `migrate` created (the drill reaper every 10 s, the
outbox sweep every 30 s), exactly as in production. Scenarios:

1. `worker-kill`: while a game day runs, one worker's whole process group is SIGKILLed
   and a new worker starts 1 s later (what scripts/run's supervisor does). Reported:
   seconds from the kill until every run in flight or queued at that moment has
   finished, how many were resumed by a second attempt, stuck runs.
2. `redis-restart`: while a game day runs, Redis is stopped and started again empty (no
   persistence): every queued message is gone. Reported as above.
3. `broker-down`: emergency grants while Redis is stopped, then Redis returns. Reported:
   grants issued, notifications delivered, duplicates, seconds from Redis's return until
   the last delivery.

The last line is `faults: ...` with every count; exit status 0 only if nothing was lost,
stuck or duplicated.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORKER_ARGS = (
    "worker",
    "--loglevel=INFO",
    "--concurrency=1",
    "--pool=prefork",
    "--without-heartbeat",
    "--without-mingle",
    "--without-gossip",
)


def _finished(game_day) -> int:
    from drills.models import DrillRun

    return DrillRun.objects.filter(game_day=game_day, state__in=DrillRun.FINISHED).count()


def _game_day_with_fault(name: str, people, paths, concurrency: int, fault, timeout: float):
    """Start a game day, inject `fault()` once a third of it has finished, wait for the
    end. Returns (seconds from the fault until every run that was in flight or queued at
    that moment had finished, how many of those were resumed by a second attempt, states).
    """
    from django.db.models import Q

    from drills.gameday import gameday_start
    from drills.models import DrillRun

    game_day = gameday_start(name=name, participants=people, paths=paths, concurrency=concurrency)
    runs = DrillRun.objects.filter(game_day=game_day)
    total = runs.count()
    deadline = time.monotonic() + timeout
    fault_at = None
    in_flight: list[int] = []
    recovered_after = None
    while time.monotonic() < deadline:
        done = runs.filter(state__in=DrillRun.FINISHED).count()
        if fault_at is None and done >= total // 3:
            in_flight = list(
                runs.filter(
                    Q(state=DrillRun.State.RUNNING)
                    | Q(state=DrillRun.State.PENDING, queued_at__isnull=False)
                ).values_list("pk", flat=True)
            )
            fault()
            fault_at = time.monotonic()
        elif fault_at is not None and recovered_after is None:
            if not runs.filter(pk__in=in_flight).exclude(state__in=DrillRun.FINISHED).exists():
                recovered_after = time.monotonic() - fault_at
        if done == total and recovered_after is not None:
            break
        time.sleep(0.2)
    resumed = runs.filter(pk__in=in_flight, attempt__gt=1).count()
    states = {s: runs.filter(state=s).count() for s in DrillRun.State.values}
    return recovered_after, len(in_flight), resumed, states


def main() -> int:
    from bench.common import bench_database

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=8)
    parser.add_argument("--paths", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--grants", type=int, default=20, help="emergency grants, broker down")
    parser.add_argument("--timeout", type=int, default=600)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        parser.error("DATABASE_URL must point at PostgreSQL")

    from bench.gameday import _registry
    from devkit.redis_server import PrivateRedis
    from devkit.smtp import SmtpSink

    redis = PrivateRedis()
    redis.start()
    smtp = SmtpSink()
    smtp.start()
    data_dir = Path(tempfile.mkdtemp(prefix="bg-faults-"))
    os.environ.update(
        DATABASE_URL=bench_database(os.environ["DATABASE_URL"], suffix="faults"),
        BREAKGLASS_DATA_DIR=str(data_dir),
        CELERY_BROKER_URL=redis.url,
        DJANGO_SETTINGS_MODULE="breakglass.project.settings",
        LOG_LEVEL="WARNING",
        **smtp.env(),
    )
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from devkit.workers import celery_process

    call_command("migrate", verbosity=0)
    paths, people = _registry(participants=args.participants, paths=args.paths)
    env = dict(
        os.environ,
        BREAKGLASS_KEK=settings.BREAKGLASS_KEK,
        SECRET_KEY=settings.SECRET_KEY,
        PYTHONUNBUFFERED="1",
    )
    counts: dict = {}
    status = 0
    with ExitStack() as stack:
        workers = [
            stack.enter_context(
                celery_process(*WORKER_ARGS, f"--hostname=w{n}@%h", env=env, ready=" ready.")
            )
            for n in (1, 2)
        ]
        stack.enter_context(
            celery_process(
                "beat",
                "--loglevel=INFO",
                "--scheduler=django_celery_beat.schedulers:DatabaseScheduler",
                "--max-interval=1",
                env=env,
                ready="beat: Starting",
            )
        )

        # 1. A worker's process group is SIGKILLed; a new one starts 1 s later.
        def kill_worker():
            os.killpg(workers[0].pid, signal.SIGKILL)
            time.sleep(1)
            workers[0] = stack.enter_context(
                celery_process(*WORKER_ARGS, "--hostname=w3@%h", env=env, ready=" ready.")
            )

        counts["worker_kill"] = _summary(
            *_game_day_with_fault(
                "worker kill", people, paths, args.concurrency, kill_worker, args.timeout
            )
        )

        # 2. Redis stops and starts again empty: every queued message is lost.
        def restart_redis():
            redis.stop()
            redis.start()

        counts["redis_restart_empty"] = _summary(
            *_game_day_with_fault(
                "redis restart", people, paths, args.concurrency, restart_redis, args.timeout
            )
        )

        # 3. Emergency grants with the broker down; delivered when it is back.
        counts["broker_down"] = _broker_down(args.grants, redis, smtp, paths[0], args.timeout)

    redis.stop()
    smtp.stop()
    for scenario, figures in counts.items():
        print(f"{scenario}: {json.dumps(figures)}")
        if figures.get("lost") or figures.get("stuck") or figures.get("duplicated"):
            status = 1
    print("faults: " + json.dumps(counts))
    return status


def _summary(recovered: float | None, in_flight: int, resumed: int, states: dict) -> dict:
    return {
        "in_flight_at_fault": in_flight,
        "all_recovered_after_s": round(recovered, 1) if recovered is not None else None,
        "resumed_by_second_attempt": resumed,
        "passed": states["passed"],
        "failed": states["failed"],
        # Every run is a row from the start, so a lost one shows as stuck.
        "stuck": states["pending"] + states["running"],
    }


def _broker_down(count: int, redis, smtp, path, timeout: float) -> dict:
    from breakglass.access.grants import grant_self_issue
    from breakglass.accounts import roles
    from breakglass.outbox.models import OutboxMessage
    from devkit.factories import user_make

    path.allow_self_issue = True
    path.save(update_fields=["allow_self_issue"])
    redis.stop()
    started = time.monotonic()
    issued = 0
    for i in range(count):
        user = user_make(f"down-{i}", role_names=(roles.RESPONDER,))
        grant_self_issue(path=path, requester=user, reason="outage", confirmation=path.slug)
        issued += 1
    issue_wall = time.monotonic() - started
    rows = OutboxMessage.objects.filter(kind="email", source__startswith="breakglass.grant:")
    expected = rows.count()
    redis.start()
    back = time.monotonic()
    deadline = back + timeout
    while rows.exclude(state=OutboxMessage.State.DELIVERED).exists():
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    delivered_after = time.monotonic() - back
    time.sleep(2)  # any duplicate would arrive right behind
    received = [m["X-Breakglass-Message"] for m in smtp.messages]
    return {
        "grants_issued": issued,
        "grants_per_s": round(issued / issue_wall, 1),
        "notifications": expected,
        "delivered": rows.filter(state=OutboxMessage.State.DELIVERED).count(),
        "duplicated": len(received) - len(set(received)),
        "stuck": rows.exclude(state=OutboxMessage.State.DELIVERED).count(),
        "delivered_after_s": round(delivered_after, 1),
    }


if __name__ == "__main__":
    raise SystemExit(main())
