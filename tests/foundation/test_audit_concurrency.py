"""Several processes appending at once must build one chain: contiguous seq, no fork.

Run as a script (`python -m tests.foundation.test_audit_concurrency ...`) this module is
also the writer those tests start, so each writer is a real separate process with its
own database connection, as web workers and Celery workers are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 4
EVENTS_EACH = 15


def _start_writers(env: dict[str, str], go_file: Path) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.foundation.test_audit_concurrency",
                "write",
                str(n),
                str(go_file),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in range(WRITERS)
    ]


def _run_writers(env: dict[str, str], tmp_path: Path) -> None:
    go_file = tmp_path / "go"
    writers = _start_writers(env, go_file)
    # Every writer has imported Django and connected before any of them starts writing.
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < WRITERS and time.monotonic() < deadline:
        time.sleep(0.05)
    go_file.touch()
    for proc in writers:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out


def _assert_one_unforked_chain(rows: list[tuple[int, str, str]], status) -> None:
    seqs = [seq for seq, _, _ in rows]
    assert seqs == list(range(1, WRITERS * EVENTS_EACH + 1))
    prevs = [prev for _, prev, _ in rows]
    assert len(set(prevs)) == len(prevs), "two events extend the same predecessor (a fork)"
    assert status.intact, str(status)


def test_concurrent_writer_processes_on_sqlite_build_one_chain(tmp_path):
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'audit.sqlite3'}",
        BREAKGLASS_DATA_DIR=str(tmp_path / "data"),
        BREAKGLASS_SIGNAL_DIR=str(tmp_path),
    )
    setup = subprocess.run(
        [sys.executable, "-m", "tests.foundation.test_audit_concurrency", "setup"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    _run_writers(env, tmp_path)
    check = subprocess.run(
        [sys.executable, "-m", "tests.foundation.test_audit_concurrency", "verify"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    result = json.loads(check.stdout.splitlines()[-1])
    seqs = [row[0] for row in result["rows"]]
    assert seqs == list(range(1, WRITERS * EVENTS_EACH + 1))
    assert len({row[1] for row in result["rows"]}) == len(seqs), "forked chain"
    assert result["intact"], result["status"]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_concurrent_writer_processes_on_postgresql_build_one_chain(tmp_path):
    from breakglass.audit.models import AuditEvent
    from breakglass.audit.selectors import audit_chain_verify
    from devkit.workers import test_database_url

    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=test_database_url(),
        BREAKGLASS_SIGNAL_DIR=str(tmp_path),
    )
    _run_writers(env, tmp_path)
    rows = list(AuditEvent.objects.order_by("seq").values_list("seq", "prev_hash", "hash"))
    _assert_one_unforked_chain(rows, audit_chain_verify())
    writers_seen = {e.data["writer"] for e in AuditEvent.objects.all()}
    assert writers_seen == set(range(WRITERS))


def _main(argv: list[str]) -> None:
    import django

    django.setup()
    from django.db import connection

    from breakglass.audit.models import AuditEvent
    from breakglass.audit.selectors import audit_chain_verify
    from breakglass.audit.services import audit_record

    mode = argv[0]
    if mode == "setup":
        from django.contrib.auth.models import Group, Permission, User
        from django.contrib.contenttypes.models import ContentType

        # Only the tables under test (and what its actor key refers to): a full migrate
        # would cost seconds for nothing.
        with connection.schema_editor() as editor:
            for model in (ContentType, Permission, Group, User, AuditEvent):
                editor.create_model(model)
    elif mode == "write":
        writer, go_file = int(argv[1]), Path(argv[2])
        connection.ensure_connection()
        Path(os.environ["BREAKGLASS_SIGNAL_DIR"], f"ready-{writer}").touch()
        while not go_file.exists():
            time.sleep(0.01)
        for n in range(EVENTS_EACH):
            audit_record(action="test.concurrent", data={"writer": writer, "n": n})
    elif mode == "verify":
        rows = list(AuditEvent.objects.order_by("seq").values_list("seq", "prev_hash", "hash"))
        status = audit_chain_verify()
        print(json.dumps({"rows": rows, "intact": status.intact, "status": str(status)}))


if __name__ == "__main__":
    _main(sys.argv[1:])
