"""Several responders and approvers working one path at once: no deadlock, no error a
person would see, one unforked audit chain.

Run as a script (`python -m tests.breakglass.test_grant_concurrency work N GO`) this
module is also the worker those tests start: each is a real process with its own
database connection, as web and Celery workers are. Each worker requests, approves
other people's requests, breaks the glass, issues a drill grant, closes other people's
reviews and revokes its own grants, all on the same path.
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

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 4
ROUNDS = 8


def _people():
    from breakglass.accounts import roles
    from devkit.factories import user_make

    both = (roles.RESPONDER, roles.APPROVER)
    return [user_make(f"p{n}-oncall", role_names=both) for n in range(WORKERS)]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_several_processes_working_one_path_never_deadlock_or_fail(tmp_path, trust):
    from breakglass.access.models import Grant
    from breakglass.audit.selectors import audit_chain_verify
    from devkit.workers import test_database_url
    from tests.breakglass.conftest import path_make

    _people()
    path = path_make(approvals_required=2)
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=test_database_url(),
        TRUST_PUBLISH_DIR=str(tmp_path / "trust"),
        BREAKGLASS_SIGNAL_DIR=str(tmp_path),
        PYTHONUNBUFFERED="1",
    )
    go_file = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.breakglass.test_grant_concurrency", "work", str(n)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in range(WORKERS)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < WORKERS and time.monotonic() < deadline:
        time.sleep(0.05)
    go_file.touch()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-4000:]
        results.append(json.loads(out.strip().splitlines()[-1]))

    failures = Counter()
    retried = Counter()
    for result in results:
        failures.update(result["failures"])
        retried.update(result["retried"])
    assert dict(failures) == {}, "a person would have seen these errors"
    # The lock order, not the retry, is what keeps this clean: not one deadlock happened.
    assert retried["deadlock"] == 0
    assert sum(result["operations"] for result in results) >= WORKERS * ROUNDS * 3
    assert audit_chain_verify().intact
    for grant in Grant.objects.filter(path=path):
        approvals = grant.approvals.count()
        assert approvals <= 2
        if grant.emergency or grant.drill:  # issued at once, without approvals
            assert grant.issued_at is not None
        elif grant.issued_at is not None:
            assert approvals == 2


def _work(n: int, signal_dir: Path) -> dict:
    from django.contrib.auth.models import User
    from django.db import connection

    from breakglass.access.credentials import grant_issue_drill
    from breakglass.access.errors import GrantError
    from breakglass.access.grants import grant_approve, grant_request, grant_self_issue
    from breakglass.access.lifecycle import grant_review_close, grant_revoke
    from breakglass.access.models import BackupPath, Grant
    from breakglass.project import transient

    me = User.objects.get(username=f"p{n}-oncall")
    path = BackupPath.objects.get(slug="sso-backup")
    failures: Counter = Counter()
    operations = 0

    def attempt(operation, **kwargs):
        nonlocal operations
        operations += 1
        try:
            operation(**kwargs)
        except GrantError:
            pass  # a refusal a person can act on (already approved, review pending...)
        except Exception as exc:  # what a person would see as a 500
            failures[f"{operation.__name__}: {type(exc).__name__}: {str(exc)[:80]}"] += 1

    connection.ensure_connection()
    (signal_dir / f"ready-{n}").touch()
    while not (signal_dir / "go").exists():
        time.sleep(0.01)
    for round_ in range(ROUNDS):
        attempt(grant_request, path=path, requester=me, reason=f"round {round_}")
        for grant in Grant.objects.filter(path=path, state=Grant.State.PENDING).exclude(
            requester=me
        ):
            attempt(grant_approve, grant=grant, approver=me)
        attempt(grant_self_issue, path=path, requester=me, reason="outage", confirmation=path.slug)
        attempt(grant_issue_drill, path=path, drill_ref=f"concurrency-{n}-{round_}")
        for grant in Grant.objects.filter(
            path=path, emergency=True, reviewed_at__isnull=True
        ).exclude(requester=me):
            attempt(grant_review_close, grant=grant, reviewer=me, notes="justified")
        for grant in Grant.objects.filter(path=path, requester=me, state=Grant.State.ISSUED)[:2]:
            attempt(grant_revoke, grant=grant, actor=me, reason="done")
    return {
        "failures": dict(failures),
        "operations": operations,
        "retried": dict(transient.retry_counts),
    }


if __name__ == "__main__":
    import django

    django.setup()
    mode, number = sys.argv[1], int(sys.argv[2])
    assert mode == "work"
    print(json.dumps(_work(number, Path(os.environ["BREAKGLASS_SIGNAL_DIR"]))))
