"""Publishing one external status update to 10,000 e-mail subscribers and 50 webhooks.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/anything REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python bench/comms_delivery.py [--subscribers 10000] [--webhooks 50] [--concurrency 2]

Everything is real and on loopback: a throwaway PostgreSQL database (created and dropped
by this script), Redis, one Celery worker process (prefork, --concurrency), an aiosmtpd
SMTP sink, and 50 http.server webhook receivers, one of which answers 500 to every other
request. The update goes through the same services as the console (draft, second-person
review, publish); publishing writes one fan-out row, the worker writes a row per
recipient and delivers them.

Printed: how long publish() took, time until every e-mail and every webhook was
delivered, deliveries per second, the exactly-once counts (messages at the sink per
address, accepted webhook calls per receiver, outbox rows), a second fan-out run proving
it adds nothing, a ratio against a no-op Celery task baseline measured with the same
worker in the same run (before and after the fan-out; the mean is used), the CPU one
delivery and one no-op task cost (bench/cpu.py), and last `bench.common.summary_line`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _create_database(base_url: str) -> str:
    import psycopg

    name = f"bg_bench_comms_{os.getpid()}"
    parts = urlsplit(base_url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def _drop_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.strip("/")}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--webhooks", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--baseline-tasks", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get(
        "REDIS_URL"
    ):
        print("needs DATABASE_URL (PostgreSQL) and REDIS_URL (Redis)", file=sys.stderr)
        return 2

    from devkit.smtp import SmtpSink

    sink = SmtpSink().start()
    bench_db = _create_database(os.environ["DATABASE_URL"])
    os.environ.update(
        DATABASE_URL=bench_db,
        DJANGO_SETTINGS_MODULE="tests.settings",
        BREAKGLASS_TEST_REAL_BROKER="1",
        CELERY_BROKER_URL=os.environ["REDIS_URL"],
        CELERY_RESULT_BACKEND=os.environ["REDIS_URL"],
        **sink.env(),
    )
    try:
        return _run(args, sink)
    finally:
        sink.stop()
        from django.db import connections

        connections.close_all()
        _drop_database(bench_db)


def _run(args, sink) -> int:
    import logging

    import django

    django.setup()
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    logging.getLogger("breakglass.outbox.services").setLevel(logging.ERROR)
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count
    from django.utils import timezone

    from bench.common import summary_line
    from bench.cpu import CpuMeter
    from breakglass.access.models import CriticalService, Team
    from breakglass.outbox.models import OutboxMessage
    from breakglass.outbox.services import outbox_dispatch
    from breakglass.project.celery import app, ping
    from comms import incidents, updates, webhooks
    from comms.models import Subscriber
    from comms.selectors import FANOUT_KINDS
    from devkit.receivers import Receiver
    from devkit.workers import celery_worker, worker_env

    call_command("migrate", verbosity=0)
    app.control.purge()

    people = {}
    for name, role in (("ines", "incident-commander"), ("cody", "comms-lead")):
        user = User.objects.create_user(name, email=f"{name}@example.test")
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        people[name] = user
    team = Team.objects.create(name="Platform", slug="platform")
    sso = CriticalService.objects.create(name="Single sign-on", slug="sso", owning_team=team)
    now = timezone.now()
    Subscriber.objects.bulk_create(
        Subscriber(email=f"reader{i}@example.test", created_at=now, confirmed_at=now)
        for i in range(args.subscribers)
    )

    receivers = [Receiver("ok") for _ in range(args.webhooks - 1)] + [Receiver("flaky")]
    for receiver in receivers:
        receiver.__enter__()
    for i, receiver in enumerate(receivers):
        webhooks.webhook_create(
            name=f"hook{i}",
            url=receiver.url,
            owner=people["cody"],  # only comms leads and administrators manage webhooks
            format="slack" if i % 2 else "json",
        )

    incident = incidents.incident_declare(
        title="Logins failing",
        severity=1,
        actor=people["ines"],
        commander=people["ines"],
        comms_lead=people["cody"],
        services=[(sso, "major_outage")],
    )
    update = updates.status_update_draft(
        incident=incident,
        audience="external",
        body="We are investigating problems with {{ affected_services }}.",
        actor=people["cody"],
    )
    updates.status_update_review(update=update, reviewer=people["ines"], approve=True)
    rows = OutboxMessage.objects.filter(source=update.outbox_source).exclude(kind__in=FANOUT_KINDS)
    expected = args.subscribers + args.webhooks

    env = worker_env(**sink.env(), CELERY_RESULT_BACKEND=os.environ["REDIS_URL"])
    try:
        with celery_worker(concurrency=args.concurrency, env=env) as worker:
            meter = CpuMeter(worker_roots=[worker.pid], database=connection.settings_dict["NAME"])

            def noop_rate() -> tuple[float, float]:
                """The same worker draining no-op tasks: (tasks/s, CPU seconds per task)."""
                meter.start()
                started = time.perf_counter()
                results = [ping.apply_async() for _ in range(args.baseline_tasks)]
                for result in results:
                    result.get(timeout=120)
                rate = args.baseline_tasks / (time.perf_counter() - started)
                return rate, meter.stop() / args.baseline_tasks

            for _ in range(10):
                ping.apply_async().get(timeout=30)
            # Measured before and after the fan-out: others' load on the machine moves it.
            noop_before, noop_cpu_before = noop_rate()

            meter.start()
            started = time.perf_counter()
            updates.status_update_publish(update=update, actor=people["cody"])
            publish_seconds = time.perf_counter() - started
            emails_done = webhooks_done = None
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                # Counted by the database: fetching 10,000 rows four times a second would
                # load this process, which also runs the SMTP sink being measured.
                delivered = Counter(
                    dict(
                        rows.filter(state="delivered")
                        .order_by()
                        .values("kind")
                        .annotate(n=Count("pk"))
                        .values_list("kind", "n")
                    )
                )
                elapsed = time.perf_counter() - started
                if emails_done is None and delivered["comms_email"] == args.subscribers:
                    emails_done = elapsed
                if webhooks_done is None and delivered["comms_webhook"] == args.webhooks:
                    webhooks_done = elapsed
                if emails_done and webhooks_done:
                    break
                meter.sample()
                time.sleep(0.25)
            total_seconds = time.perf_counter() - started
            delivery_cpu = meter.stop()
            done = rows.filter(state="delivered").count()
            noop_after, noop_cpu_after = noop_rate()
            noop_rate_mean = (noop_before + noop_after) / 2
            noop_cpu = (noop_cpu_before + noop_cpu_after) / 2

            # Run the fan-out and every batch again, as crashed or redelivered tasks
            # would: nothing new may be written or sent.
            steps = OutboxMessage.objects.filter(source=update.outbox_source, kind__in=FANOUT_KINDS)
            step_ids = list(steps.values_list("pk", flat=True))
            steps.update(state="pending", next_attempt_at=timezone.now())
            outbox_dispatch(message_ids=step_ids)
            while steps.filter(state="delivered").count() < len(step_ids):
                time.sleep(0.2)
            time.sleep(2)  # any duplicate deliveries would arrive now
    finally:
        for receiver in receivers:
            receiver.__exit__(None, None, None)

    per_address = Counter(r for r in sink.recipients() if r.startswith("reader"))
    accepted = [len(r.accepted) for r in receivers]
    flaky = receivers[-1]
    print(
        f"recipients: {args.subscribers} e-mail subscribers + {args.webhooks} webhooks "
        f"(1 failing every other request); worker concurrency {args.concurrency}"
    )
    print(f"publish() call (one fan-out row):          {publish_seconds * 1000:8.1f} ms")
    print(f"all e-mails delivered after:               {emails_done or float('nan'):8.2f} s")
    print(
        f"all webhooks delivered after:              {webhooks_done or float('nan'):8.2f} s "
        "(includes the flaky receiver's 10 s back-off)"
    )
    email_rate = args.subscribers / emails_done if emails_done else 0.0
    print(f"e-mail deliveries per second:              {email_rate:8.1f}")
    print(f"deliveries per second, everything:         {done / total_seconds:8.1f}")
    print(
        f"no-op Celery tasks per second (baseline):  {noop_rate_mean:8.1f} "
        f"(before {noop_before:.1f}, after {noop_after:.1f})"
    )
    ratio = email_rate / noop_rate_mean
    print(f"ratio e-mail deliveries / no-op tasks:     {ratio:8.3f}x")
    print(
        f"CPU (worker and its PostgreSQL backends):  {delivery_cpu / done * 1000:8.2f} ms per "
        f"delivery, {noop_cpu * 1000:.2f} ms per no-op task"
    )
    print("exactly once:")
    print(
        f"  outbox delivery rows: {rows.count()} (expected {expected}), delivered {done}, "
        f"distinct keys {rows.values('idempotency_key').distinct().count()}"
    )
    print(
        f"  SMTP sink: {sum(per_address.values())} messages to {len(per_address)} addresses, "
        f"max per address {max(per_address.values(), default=0)}"
    )
    print(
        f"  webhooks: accepted calls per receiver min {min(accepted)} max {max(accepted)}; "
        f"flaky receiver saw {len(flaky.requests)} requests, accepted {len(flaky.accepted)}"
    )
    ok = (
        done == expected
        and rows.count() == expected
        and len(per_address) == args.subscribers
        and set(per_address.values()) == {1}
        and set(accepted) == {1}
    )
    print("RESULT:", "exactly one delivery per recipient" if ok else "MISMATCH")
    print(
        summary_line(f"fanout_{args.subscribers}", ratio, "no-op Celery tasks", target=">= 0.85x")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
