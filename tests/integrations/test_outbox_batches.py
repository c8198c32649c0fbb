"""Batches of outbox rows claimed by one conditional UPDATE: real worker processes racing
for the same rows, and one dying in the middle of its batch, against real PostgreSQL and
a real SMTP server. Nobody gets a row twice and nothing is lost.

The workers those tests start run `_main` below (after `django.setup()`), each a separate
process with its own database connection, as Celery's prefork workers are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from breakglass.outbox.handlers import register
from breakglass.outbox.models import OutboxMessage
from breakglass.outbox.outbox_handlers import deliver_email
from breakglass.outbox.services import CLAIM_LEASE, outbox_enqueue, outbox_sweep
from breakglass.project.celery import app

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 4
WORKER = (
    "import sys, django; django.setup(); "
    "from tests.integrations.test_outbox_batches import _main; _main(sys.argv[1:])"
)


@register("test_batch_email")
def _email_unless_told_to_crash(message) -> None:
    """The built-in e-mail channel, except in a worker started with CRASH_AT=<key>: that
    worker dies (as from SIGKILL: no clean-up, no exception handler) on reaching it."""
    if os.environ.get("CRASH_AT") == message.idempotency_key:
        os._exit(9)
    deliver_email(message)


def _rows(count: int) -> list[int]:
    return [
        outbox_enqueue(
            kind="test_batch_email",
            idempotency_key=f"batch:{n}",
            recipient=f"reader{n}@example.test",
            payload={"subject": f"Update {n}", "body": "b", "to": [f"reader{n}@example.test"]},
        ).pk
        for n in range(count)
    ]


def _workers(batches: list[list[int]], *, env: dict, tmp_path: Path) -> list[subprocess.Popen]:
    """One worker process per batch, all released at the same moment."""
    go_file = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(tmp_path / f"ready-{n}"),
                str(go_file),
                *map(str, batch),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n, batch in enumerate(batches)
    ]
    count = len(batches)
    # All have imported Django and connected before any claims: they race for real.
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    go_file.touch()
    return workers


def _env(smtp_sink, **extra) -> dict:
    from devkit.workers import test_database_url

    return dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=test_database_url(),
        **smtp_sink.env(),
        **extra,
    )


def test_workers_claiming_the_same_batch_at_once_deliver_each_row_once(smtp_sink, tmp_path):
    ids = _rows(120)
    # Overlapping batches: every row is in two or three workers' batches.
    batches = [ids[n * 20 : n * 20 + 60] for n in range(WORKERS)]
    workers = _workers(batches, env=_env(smtp_sink), tmp_path=tmp_path)
    results = []
    for worker in workers:
        out, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0, out
        results.append(json.loads(out.splitlines()[-1]))

    delivered_by = Counter(pk for result in results for pk, s in result.items() if s == "delivered")
    assert sorted(int(pk) for pk in delivered_by) == ids
    assert set(delivered_by.values()) == {1}, "a row was delivered by two workers"
    per_address = Counter(smtp_sink.recipients())
    assert len(per_address) == len(ids) and set(per_address.values()) == {1}
    rows = OutboxMessage.objects.filter(pk__in=ids)
    assert set(rows.values_list("state", "attempts")) == {("delivered", 1)}


def test_a_batch_whose_worker_dies_is_swept_and_each_row_delivered_once(
    smtp_sink, settings, tmp_path
):
    smtp_sink.configure(settings)
    ids = _rows(10)
    claimed_at = timezone.now()
    [worker] = _workers([ids], env=_env(smtp_sink, CRASH_AT="batch:4"), tmp_path=tmp_path)
    out, _ = worker.communicate(timeout=120)
    assert worker.returncode == 9, out

    rows = OutboxMessage.objects.filter(pk__in=ids).order_by("pk")
    # Rows 0-3 went out before the crash; the rest are still held by the dead worker.
    assert [r.state for r in rows] == ["delivered"] * 4 + ["sending"] * 6
    assert sorted(smtp_sink.recipients()) == [f"reader{n}@example.test" for n in range(4)]

    app.conf.task_always_eager = True  # the sweep's re-queued batch runs here, now
    try:
        with time_machine.travel(claimed_at + CLAIM_LEASE / 2, tick=False):
            outbox_sweep()  # within the lease: the rows still belong to the dead worker
            assert rows.filter(state="sending").count() == 6
        with time_machine.travel(claimed_at + CLAIM_LEASE * 2, tick=False):
            outbox_sweep()
    finally:
        app.conf.task_always_eager = False
    assert set(rows.values_list("state", flat=True)) == {"delivered"}
    per_address = Counter(smtp_sink.recipients())
    assert sorted(per_address) == sorted(f"reader{n}@example.test" for n in range(10))
    assert set(per_address.values()) == {1}
    # The crash happened before row 4's e-mail left; its second attempt carries its key.
    assert rows.get(idempotency_key="batch:4").attempts == 2


def _main(argv: list[str]) -> None:
    """One worker: connect, say so, wait for the others, then deliver the batch."""
    from django.db import connection

    from breakglass.outbox.services import outbox_deliver_many

    ready, go_file, *ids = argv
    connection.ensure_connection()
    Path(ready).touch()
    while not Path(go_file).exists():
        time.sleep(0.005)
    states = outbox_deliver_many(message_ids=[int(pk) for pk in ids])
    print(json.dumps({str(pk): state for pk, state in states.items()}))
