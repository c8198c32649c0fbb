"""Benchmark: emergency self-issue through the services with 1, 4 and 8 client processes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bg REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/process_scaling.py [--grants 400] [--processes 1,4,8]

It creates (and drops first) its own database `<DATABASE_URL name>_scaling`, migrates it,
and builds 8 paths (one per process, so no two processes share a path's row lock) and a
fresh responder for every grant (a person cannot break the glass twice on a path before
the review). For each process count K, K real processes (each its own PostgreSQL
connection, as web workers are) share the same total number of grants and call
`grant_self_issue` (policy checks, Ed25519 token, credential encrypted at rest, audit
events, notify-on-use outbox rows dispatched to Redis after commit, one transaction).

It prints grants per second for each K, the ratio K vs 1 (target >= 1.9x for 4 and for
8 on a 2-core machine, where about 2x is the limit while CPU-bound), where the time went
(what `pg_stat_activity` showed the database sessions waiting on, sampled during each
run, and how long each process waited for the audit chain's advisory lock), and checks
that nothing was lost or duplicated: every grant issued once, three audit events each,
one notify-on-use row per recipient, and one unforked chain.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PATHS = 8
WARMUP = 3  # grants each process makes before the clock starts (imports, caches)
EVENTS_PER_GRANT = ("grant.self_issued", "token.minted", "grant.issued")


def _setup(*, rounds: list[int], grants: int) -> dict:
    """Paths, approvers and one responder per grant (and per warm-up grant)."""
    from django.contrib.auth.models import Group, User
    from django.db import transaction

    from breakglass.access.models import BackupPath, CriticalService, Team
    from breakglass.accounts import roles
    from breakglass.keys.services import keys_bootstrap
    from devkit.factories import user_make

    keys_bootstrap()
    with transaction.atomic():
        responders = Group.objects.get_or_create(name=roles.RESPONDER)[0]
        approvers = Group.objects.get_or_create(name=roles.APPROVER)[0]
        for name in ("alex", "bea", "carl"):
            user_make(name, role_names=(roles.APPROVER,))
        team = Team.objects.create(name="Network", slug="network")
        for i in range(PATHS):
            service = CriticalService.objects.create(
                name=f"Service {i}", slug=f"svc-{i}", tier=1, owning_team=team
            )
            BackupPath.objects.create(
                service=service,
                name=f"Path {i}",
                slug=f"path-{i}",
                scopes=["read", "admin"],
                approvals_required=2,
                approver_group=approvers,
                responder_group=responders,
                allow_self_issue=True,
            )
        names = [
            _person(k, worker, n)
            for k in rounds
            for worker in range(k)
            for n in range(WARMUP + grants // k)
        ]
        people = User.objects.bulk_create(
            [User(username=name, email=f"{name}@example.test") for name in names]
        )
        responders.user_set.add(*people)
    return {"people": len(people)}


def _person(k: int, worker: int, n: int) -> str:
    return f"k{k}-w{worker}-{n:05d}"


def _worker(k: int, worker: int, count: int, go: Path) -> dict:
    """One client process: self-issue `count` grants on its own path, then report."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection

    from bench.common import backend_cpu_reader
    from breakglass.access.grants import grant_self_issue
    from breakglass.access.models import BackupPath
    from breakglass.audit.services import _PG_LOCK_KEY as AUDIT_LOCK

    path = BackupPath.objects.select_related("service").get(slug=f"path-{worker}")
    people = {
        user.username: user for user in User.objects.filter(username__startswith=f"k{k}-w{worker}-")
    }
    lock_wait = 0.0

    def measure_lock(execute, sql, params, many, context):
        nonlocal lock_wait
        if "pg_advisory_xact_lock" not in sql or AUDIT_LOCK not in (params or ()):
            return execute(sql, params, many, context)
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            lock_wait += time.perf_counter() - started

    def issue(n: int) -> None:
        grant_self_issue(
            path=path,
            requester=people[_person(k, worker, n)],
            reason="benchmark",
            confirmation=path.slug,
            lifetime_minutes=30,
        )

    for n in range(WARMUP):
        issue(n)
    backend = backend_cpu_reader(connection)
    (go.parent / f"ready-{k}-{worker}").touch()
    while not go.exists():
        time.sleep(0.002)
    cpu, backend_cpu, started = time.process_time(), backend(), time.time()
    done_at = []
    with connection.execute_wrapper(measure_lock):
        for n in range(WARMUP, WARMUP + count):
            issue(n)
            done_at.append(time.time())
    return {
        "worker": worker,
        "grants": count,
        "started": started,
        "finished": done_at[-1],
        "done_at": done_at,
        "lock_wait": lock_wait,
        "cpu": time.process_time() - cpu,
        "backend_cpu": backend() - backend_cpu,
    }


class WaitSampler:
    """Samples what the benchmark database's sessions are waiting on, from a connection
    of its own, every `every` seconds, until stopped."""

    def __init__(self, url: str, *, every: float = 0.02):
        self.url, self.every = url, every
        self.samples = 0
        self.waits: Counter = Counter()
        self.active = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psycopg

        query = (
            "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        )
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(self.every):
                rows = conn.execute(query).fetchall()
                self.samples += 1
                for state, kind, event in rows:
                    if state == "active" or (state or "").startswith("idle in transaction"):
                        self.active += 1
                        if kind and kind != "Client":
                            self.waits[f"{kind}:{event}"] += 1

    def summary(self) -> str:
        if not self.active:
            return "no busy database sessions sampled"
        top = ", ".join(
            f"{name} {100 * n / self.active:.0f}%" for name, n in self.waits.most_common(4)
        )
        return f"busy sessions waiting on: {top or 'nothing (running or in the client)'}"


def _run_round(k: int, grants: int, url: str, data_dir: Path) -> dict:
    signals = Path(tempfile.mkdtemp(prefix=f"scaling-{k}-", dir=data_dir))
    go = signals / "go"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", f"{k}:{w}:{grants // k}:{go}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(k)
    ]
    deadline = time.monotonic() + 120
    while len(list(signals.glob("ready-*"))) < k:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            for proc in procs:
                proc.kill()
            raise SystemExit("a worker did not start: " + procs[0].communicate()[1][-2000:])
        time.sleep(0.01)
    with WaitSampler(url) as sampler:
        started = time.time()
        go.touch()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=900)
            if proc.returncode != 0:
                raise SystemExit(f"worker failed ({proc.returncode}):\n{err[-4000:]}")
            results.append(json.loads(out.strip().splitlines()[-1]))
    wall = max(r["finished"] for r in results) - started
    done = sum(r["grants"] for r in results)
    # The rate while every process was still working (until the first one finished), so
    # a process the scheduler left behind does not stretch the round's tail.
    window = min(r["finished"] for r in results)
    in_window = sum(1 for r in results for moment in r["done_at"] if moment <= window)
    return {
        "processes": k,
        "grants": done,
        "wall_s": wall,
        "per_s": in_window / (window - started),
        "spread_s": max(r["finished"] for r in results) - min(r["finished"] for r in results),
        "client_cpu_ms": 1000 * sum(r["cpu"] for r in results) / done,
        "server_cpu_ms": 1000 * sum(r["backend_cpu"] for r in results) / done,
        # CPU seconds spent per second of wall clock by the clients and their backends:
        # at the machine's core count the round is CPU-bound, not waiting on a lock.
        "cores_busy": sum(r["cpu"] + r["backend_cpu"] for r in results) / wall,
        "lock_wait_share": sum(r["lock_wait"] for r in results) / (k * wall),
        "waits": sampler.summary(),
    }


def _check(rounds: list[int], grants: int) -> list[str]:
    """Everything each round should have left, and nothing more."""
    from django.conf import settings

    from breakglass.access.models import Grant
    from breakglass.audit.models import AuditEvent
    from breakglass.audit.selectors import audit_chain_verify
    from breakglass.outbox.models import OutboxMessage

    problems = []
    expected = sum(WARMUP * k + (grants // k) * k for k in rounds)
    issued = Grant.objects.filter(emergency=True, state=Grant.State.ISSUED)
    if issued.count() != expected or Grant.objects.count() != expected:
        problems.append(f"{Grant.objects.count()} grants, {issued.count()} issued; {expected}")
    if issued.values("jti").distinct().count() != expected:
        problems.append("duplicate jti")
    for action in EVENTS_PER_GRANT:
        n = AuditEvent.objects.filter(action=action).count()
        if n != expected:
            problems.append(f"{n} {action} audit events for {expected} grants")
    recipients = 3 + len(set(settings.BREAKGLASS_SECURITY_CONTACTS))
    rows = OutboxMessage.objects.filter(source__startswith="breakglass.grant:").count()
    if rows != expected * recipients:
        problems.append(f"{rows} notify-on-use rows, expected {expected * recipients}")
    status = audit_chain_verify()
    if not status.intact:
        problems.append(str(status))
    return problems


def main() -> int:
    from bench.common import bench_database, summary_line

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grants", type=int, default=400, help="grants per round (all processes)")
    parser.add_argument("--processes", default="1,4,8", help="process counts; the first is 1")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        k, worker, count, go = args.worker.split(":", 3)
        print(json.dumps(_worker(int(k), int(worker), int(count), Path(go))))
        return 0
    rounds = [int(k) for k in args.processes.split(",")]
    if rounds[0] != 1 or max(rounds) > PATHS or any(args.grants % k for k in rounds):
        parser.error(f"--processes starts with 1, at most {PATHS}, each dividing --grants")
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        parser.error("DATABASE_URL must point at PostgreSQL")

    data_dir = Path(tempfile.mkdtemp(prefix="bg-scaling-"))
    url = bench_database(os.environ["DATABASE_URL"], suffix="scaling")
    redis = os.environ.get("REDIS_URL", "")
    os.environ.update(
        DATABASE_URL=url,
        BREAKGLASS_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="breakglass.project.settings",
        LOG_LEVEL="WARNING",
        # Notifications are dispatched after commit as in production; nothing consumes
        # them here (the queue is purged at the end). Without Redis: the memory broker.
        CELERY_BROKER_URL=redis or "memory://",
    )
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from breakglass.project.celery import app

    os.environ.update(BREAKGLASS_KEK=settings.BREAKGLASS_KEK, SECRET_KEY=settings.SECRET_KEY)
    call_command("migrate", verbosity=0)
    _setup(rounds=rounds, grants=args.grants)
    figures = []
    try:
        for k in rounds:
            result = _run_round(k, args.grants, url, data_dir)
            figures.append(result)
            print(
                f"{k} process(es): {result['grants']} grants in {result['wall_s']:.2f}s, "
                f"{result['per_s']:.1f}/s while all were running (first to last process done: "
                f"{result['spread_s']:.2f}s); CPU per grant: client {result['client_cpu_ms']:.1f} "
                f"ms, its PostgreSQL backend {result['server_cpu_ms']:.1f} ms; audit-lock wait "
                f"{100 * result['lock_wait_share']:.0f}% of process time; {result['waits']}; "
                f"cores busy with this work: {result['cores_busy']:.2f} of {os.cpu_count()}",
                flush=True,
            )
    finally:
        if redis:
            app.control.purge()
    problems = _check(rounds, args.grants)
    print("nothing lost or duplicated; audit chain intact" if not problems else problems)
    base = figures[0]["per_s"]
    cpu_one = figures[0]["client_cpu_ms"] + figures[0]["server_cpu_ms"]
    for result in figures[1:]:
        cpu_k = result["client_cpu_ms"] + result["server_cpu_ms"]
        # One process keeps at most one core busy (it waits for its backend and the
        # backend for it); K processes at most every core: the CPU-bound ceiling.
        ceiling = min(result["processes"], os.cpu_count()) * cpu_one / cpu_k
        print(
            f"{result['processes']} vs 1 process: {result['per_s'] / base:.2f}x "
            f"(CPU-bound ceiling on this machine with nothing else running: {ceiling:.2f}x)"
        )
    worst = min(figures[1:], key=lambda r: r["per_s"], default=figures[0])
    print(
        summary_line(
            f"process_scaling_{worst['processes']}_vs_1",
            worst["per_s"] / base,
            "one process",
            target=">= 1.9x",
        )
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
