"""Benchmark: breaking the glass through the console, against a view that INSERTs one row.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bg .venv/bin/python bench/break_glass.py \
        [--grants 150] [--profile N]

Measures, in one run and one process (Django test client, full middleware stack):
- a Django view that INSERTs one row in a transaction on the same database (the
  baseline, measured before and after the grants; their mean counts), and a bare
  do-nothing view for scale,
- an emergency self-issue POST (form, policy checks, Ed25519 signature, credential
  encrypted at rest, audit events, notify-on-use outbox rows, one transaction),
  with the Celery broker (a private Redis) up,
- the same with that Redis hung (SIGSTOP: it accepts connections and never answers),
  where each grant may wait for one publish attempt of BREAKGLASS_BROKER_PUBLISH_TIMEOUT_MS
  (issue 10: 20.6 s per grant before, one 5 s socket timeout per notification),
- the same with that Redis stopped: the fail-small path, where the grant must still be
  issued and its notifications wait in the outbox,
- a k=2 approved grant: request + two approvals through the services.
Prints requests/s and the ratio to the INSERT view (target >= 0.2x, broker up and down).
It creates (and drops first) its own database `<DATABASE_URL name>_breakglass` and a
private Redis, and never touches the demo's data.

`--profile N` instead runs N console self-issues under cProfile and prints where the
time goes: statements per grant, how long the audit chain's lock is held (from the
moment it is granted to the end of COMMIT) against the whole request, and the top
functions by cumulative time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, default=150, help="self-issues per phase")
    parser.add_argument("--profile", type=int, metavar="N", help="profile N self-issues instead")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        parser.error("DATABASE_URL must point at PostgreSQL")

    from bench.common import (
        bare_view_rate,
        bench_database,
        django_setup,
        insert_view_cost,
        print_ratios,
        summary_line,
    )
    from devkit.redis_server import PrivateRedis

    redis = PrivateRedis()
    redis.start()
    os.environ.update(
        DATABASE_URL=bench_database(os.environ["DATABASE_URL"], suffix="breakglass"),
        BREAKGLASS_DATA_DIR=tempfile.mkdtemp(prefix="bg-breakglass-"),
        DJANGO_SETTINGS_MODULE="tests.settings",
        BREAKGLASS_TEST_REAL_BROKER="1",
        CELERY_BROKER_URL=redis.url,
        ALLOWED_HOSTS="testserver",
    )
    django_setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    try:
        if args.profile:
            _profile(args.profile)
            return 0
        before = insert_view_cost()
        figures, cpu = _run(args.grants, redis)
        after = insert_view_cost()
        print(f"one-INSERT view: {before[0]:.0f} req/s before the grants, {after[0]:.0f} after")
        baseline = "one-INSERT Django view"
        figures = {
            baseline: (before[0] + after[0]) / 2,
            "bare Django view": bare_view_rate(),
            **figures,
        }
        cpu = {baseline: (before[1] + after[1]) / 2, **cpu}
        print(f"\nbreak_glass benchmark ({connection.vendor}, {args.grants} grants per phase)")
        print_ratios(figures, baseline=baseline, unit="req/s")
        print(
            "\nCPU time per request (this process + its PostgreSQL backend), the steadier "
            "figure on a busy machine:"
        )
        for name, seconds in cpu.items():
            print(
                f"  {name:<34} {seconds * 1000:7.2f} ms  {cpu[baseline] / seconds:6.3f}x {baseline}"
            )
        worst = min(figures[f"break the glass (broker {state})"] for state in ("up", "DOWN"))
        print(
            summary_line(
                "break_glass",
                worst / figures[baseline],
                f"a {baseline} (broker up and down, the lower)",
                target=">= 0.2x",
            )
        )
    finally:
        redis.stop()
    return 0


def _world():
    """Keys, one self-issue path on one service, three approvers."""
    from django.contrib.auth.models import Group

    from breakglass.access.models import BackupPath, CriticalService, Team
    from breakglass.accounts import roles
    from breakglass.keys.services import keys_bootstrap
    from devkit.factories import user_make

    keys_bootstrap()
    team = Team.objects.create(name="Network", slug="network")
    service = CriticalService.objects.create(name="DNS", slug="dns", tier=1, owning_team=team)
    responders, _ = Group.objects.get_or_create(name=roles.RESPONDER)
    approvers, _ = Group.objects.get_or_create(name=roles.APPROVER)
    path = BackupPath.objects.create(
        service=service,
        name="DNS zone editor",
        slug="dns-zone",
        scopes=["read", "write"],
        approvals_required=2,
        approver_group=approvers,
        responder_group=responders,
        allow_self_issue=True,
    )
    for i in range(3):
        user_make(f"approver{i}", role_names=(roles.APPROVER,))
    return path


def _self_issue_clients(path, tag: str, count: int):
    """One logged-in, OTP-verified client per grant: a second self-issue by the same
    person is (rightly) refused until the first one's review is closed."""
    from breakglass.accounts import roles
    from devkit.factories import user_make, verified_client

    url = f"/access/paths/{path.slug}/break-glass/"
    form = {"reason": "benchmark", "confirmation": path.slug, "lifetime_minutes": "30"}
    clients = [
        verified_client(user_make(f"{tag}{i}", role_names=(roles.RESPONDER,))) for i in range(count)
    ]

    def post(client):
        response = client.post(url, form)
        assert response.status_code == 302, (response.status_code, response.content[:300])

    return clients, post


def _profile(count: int) -> None:
    """Where one console self-issue spends its time (see the module docstring)."""
    import cProfile
    import io
    import pstats
    from collections import Counter

    from django.db import connection

    from breakglass.audit.services import _PG_LOCK_KEY as AUDIT_LOCK

    path = _world()
    clients, post = _self_issue_clients(path, "prof", count + 5)
    for client in clients[:5]:  # warm up
        post(client)
    statements: Counter = Counter()
    held = {"since": None, "total": 0.0}

    def watch(execute, sql, params, many, context):
        statements[sql.split(" ", 1)[0].upper()] += 1
        result = execute(sql, params, many, context)
        if "pg_advisory_xact_lock" in sql and AUDIT_LOCK in (params or ()):
            held["since"] = time.perf_counter()
        return result

    commit = connection.commit

    def timed_commit():
        try:
            return commit()
        finally:
            if held["since"] is not None:
                held["total"] += time.perf_counter() - held["since"]
                held["since"] = None

    profiler = cProfile.Profile()
    connection.commit = timed_commit
    started = time.perf_counter()
    try:
        with connection.execute_wrapper(watch):
            profiler.enable()
            for client in clients[5:]:
                post(client)
            profiler.disable()
    finally:
        connection.commit = commit
    elapsed = time.perf_counter() - started
    print(f"{count} console self-issues under cProfile: {1000 * elapsed / count:.1f} ms each")
    print(
        f"statements per grant: {sum(statements.values()) / count:.1f} ("
        + ", ".join(f"{name} {n / count:.1f}" for name, n in statements.most_common())
        + ")"
    )
    print(
        f"audit chain lock held {1000 * held['total'] / count:.2f} ms per grant, from the "
        f"moment it is granted to the end of COMMIT ({100 * held['total'] / elapsed:.0f}% "
        "of the request)"
    )
    if os.environ.get("BENCH_PROFILE_DUMP"):
        profiler.dump_stats(os.environ["BENCH_PROFILE_DUMP"])
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
    print(out.getvalue())


def _run(count: int, redis) -> tuple[dict[str, float], dict[str, float]]:
    import logging

    from django.db import connection

    from bench.common import CpuMeter
    from breakglass.access import grants
    from breakglass.accounts import roles
    from breakglass.outbox.models import OutboxMessage
    from devkit.factories import user_make

    path = _world()
    warm, post = _self_issue_clients(path, "warm", 3)
    for client in warm:  # imports, URL resolution, first connections: not measured
        post(client)

    cpu: dict[str, float] = {}

    def self_issue_rate(tag: str, count: int = count) -> float:
        clients, post = _self_issue_clients(path, tag, count)
        with CpuMeter(connection) as meter:
            for client in clients:
                post(client)
        cpu[f"break the glass (broker {tag if tag == 'up' else tag.upper()})"] = meter.cpu / count
        return count / meter.wall

    figures = {"break the glass (broker up)": self_issue_rate("up")}
    # From here each grant logs that its notifications wait for the sweep: counted below.
    logging.getLogger("breakglass.outbox.services").setLevel(logging.ERROR)
    redis.freeze()
    try:
        hung_count = min(count, 40)
        hung = self_issue_rate("hung", hung_count)
    finally:
        redis.thaw()
    figures["break the glass (broker HUNG)"] = hung
    added = 1 / hung - 1 / figures["break the glass (broker up)"]
    print(f"a hung broker adds {added * 1000:.0f} ms per emergency grant (target < 500 ms)")
    redis.stop()
    before = OutboxMessage.objects.count()
    down = self_issue_rate("down")
    written = OutboxMessage.objects.count() - before
    pending = OutboxMessage.objects.filter(state=OutboxMessage.State.PENDING).count()
    assert pending >= written > 0, (pending, written)
    figures["break the glass (broker DOWN)"] = down

    requester = user_make("requester", role_names=(roles.RESPONDER,))
    approver_a, approver_b = (user_make(f"k{i}", role_names=(roles.APPROVER,)) for i in (1, 2))
    started = time.perf_counter()
    for _ in range(count):
        grant = grants.grant_request(
            path=path, requester=requester, reason="benchmark", lifetime_minutes=30
        )
        grants.grant_approve(grant=grant, approver=approver_a)
        grants.grant_approve(grant=grant, approver=approver_b)
    figures["request + 2 approvals (services)"] = count / (time.perf_counter() - started)
    print(f"notifications written while the broker was down: {written}, all pending for the sweep")
    return figures, cpu


if __name__ == "__main__":
    sys.exit(main())
