"""Benchmark: `verify_audit` over 100,000 and 1,000,000 events vs merely reading them.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bg .venv/bin/python bench/verify_audit.py \\
        [--sizes 100000,1000000] [--rounds 2]

It creates (and drops first) its own database `<DATABASE_URL name>_audit`, migrates it
and appends events to the real chain in bulk (`devkit.audit_bulk`: COPY, hashed exactly
as the product hashes them, under the chain's lock). At each size it runs, alternately
and `--rounds` times each, in a fresh child process:

- the baseline: read every event row (all its columns) in order through the ORM,
  streamed in the chunks `verify_audit` uses, and nothing else;
- `manage.py verify_audit --no-checkpoint-file`, which must report the chain intact
  with exactly that many events;
- for scale, a raw fetch: the columns `verify_audit` reads, in the form it reads them
  (creation time as an integer, data as JSON text), from a server-side cursor, with no
  decoding at all: the floor under any reader.

The fastest round of each counts. It prints seconds, events per second, the ratio
(target >= 0.5x) and each child's peak memory (maxrss, from wait4), which must stay flat:
the same at 1,000,000 events as at 100,000.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _child(mode: str) -> dict:
    import django

    django.setup()
    from django.core.management import call_command

    from breakglass.audit.models import AuditEvent
    from breakglass.audit.selectors import CHAIN_READ_CHUNK

    started = time.perf_counter()
    if mode == "fetch":
        from django.db import connection, transaction

        from breakglass.audit.selectors import _PG_CREATED_US

        columns = _PG_CREATED_US.replace("%%", "%").format(column="created_at")
        count = 0
        with transaction.atomic(), connection.chunked_cursor() as cursor:
            cursor.execute(
                f"SELECT prev_hash, hash, seq, {columns}, actor_id, actor_label, action, "  # noqa: S608
                "object_type, object_id, data::text FROM audit_auditevent ORDER BY seq"
            )
            while rows := cursor.fetchmany(CHAIN_READ_CHUNK):
                count += len(rows)
        verdict = f"fetched {count} events"
    elif mode == "read":
        columns = [field.attname for field in AuditEvent._meta.concrete_fields]
        count = 0
        for _ in (
            AuditEvent.objects.order_by("seq")
            .values_list(*columns)
            .iterator(chunk_size=CHAIN_READ_CHUNK)
        ):
            count += 1
        verdict = f"read {count} events"
    else:
        from io import StringIO

        out = StringIO()
        call_command("verify_audit", "--no-checkpoint-file", stdout=out)
        verdict = out.getvalue().strip().splitlines()[-1]
    return {"seconds": time.perf_counter() - started, "verdict": verdict}


def _run_child(mode: str) -> tuple[dict, float]:
    """(the child's report, its peak resident memory in MiB, from wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", mode], cwd=ROOT, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{mode} child failed:\n{err.read().decode()[-3000:]}")
        report = json.loads(out.read().decode().strip().splitlines()[-1])
    return report, usage.ru_maxrss / 1024


def main() -> int:
    from bench.common import bench_database, summary_line

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="event counts, increasing")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=["read", "verify", "fetch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child)))
        return 0
    sizes = [int(size) for size in args.sizes.split(",")]
    if sizes != sorted(sizes):
        parser.error("--sizes must increase (each size extends the chain of the previous)")
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        parser.error("DATABASE_URL must point at PostgreSQL")
    os.environ.update(
        DATABASE_URL=bench_database(os.environ["DATABASE_URL"], suffix="audit"),
        BREAKGLASS_DATA_DIR=tempfile.mkdtemp(prefix="bg-audit-"),
        DJANGO_SETTINGS_MODULE="breakglass.project.settings",
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from breakglass.audit.models import AuditEvent
    from devkit.audit_bulk import audit_events_bulk_append

    os.environ.update(BREAKGLASS_KEK=settings.BREAKGLASS_KEK, SECRET_KEY=settings.SECRET_KEY)
    call_command("migrate", verbosity=0)
    results = []
    for size in sizes:
        started = time.perf_counter()
        audit_events_bulk_append(count=size - AuditEvent.objects.count())
        with django.db.connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE audit_auditevent")
        print(f"{size:,} events in the chain ({time.perf_counter() - started:.0f}s to append)")
        read, verify, fetch = [], [], []
        for _ in range(args.rounds):
            read.append(_run_child("read"))
            verify.append(_run_child("verify"))
            fetch.append(_run_child("fetch"))
        best_fetch = min(fetch, key=lambda r: r[0]["seconds"])
        best_read = min(read, key=lambda r: r[0]["seconds"])
        best_verify = min(verify, key=lambda r: r[0]["seconds"])
        expected = f"audit chain intact: {size} events"
        if not best_verify[0]["verdict"].startswith(expected):
            raise SystemExit(f"verify_audit said {best_verify[0]['verdict']!r}, not {expected!r}")
        ratio = best_read[0]["seconds"] / best_verify[0]["seconds"]
        results.append((size, ratio, max(r[1] for r in read), max(r[1] for r in verify)))
        print(
            f"  streamed read: {best_read[0]['seconds']:.2f}s "
            f"({size / best_read[0]['seconds']:,.0f} events/s), peak {results[-1][2]:.0f} MiB"
        )
        print(
            f"  verify_audit:  {best_verify[0]['seconds']:.2f}s "
            f"({size / best_verify[0]['seconds']:,.0f} events/s), peak {results[-1][3]:.0f} MiB"
        )
        print(
            f"  raw fetch, no decoding: {best_fetch[0]['seconds']:.2f}s "
            f"({size / best_fetch[0]['seconds']:,.0f} events/s); verify_audit / raw fetch = "
            f"{best_fetch[0]['seconds'] / best_verify[0]['seconds']:.3f}x"
        )
        print(f"  verify_audit / streamed read = {ratio:.3f}x (target >= 0.5x)", flush=True)
    if len(results) > 1:
        first, last = results[0], results[-1]
        print(
            f"peak memory of verify_audit: {first[3]:.0f} MiB at {first[0]:,} events, "
            f"{last[3]:.0f} MiB at {last[0]:,} ({last[3] / first[3]:.2f}x; flat is 1.0x)"
        )
    size, ratio, _, _ = results[-1]
    label = f"{size // 1_000_000}m" if size % 1_000_000 == 0 else f"{size // 1000}k"
    print(summary_line(f"verify_audit_{label}", ratio, "a streamed read", target=">= 0.5x"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
