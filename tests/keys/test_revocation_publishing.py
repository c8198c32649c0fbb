"""A revocation commits first and is published right after, by the call that made it:
revocations that arrive while a bundle is being signed ride the next one together, each
caller returns only once a published bundle lists its revocation, and one whose publish
never ran is published by the scheduler's safety net.

The worker processes the PostgreSQL tests start run `_main` below (after
`django.setup()`), each a separate process with its own database connection, as web and
Celery workers are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from breakglass.keys import selectors, services
from breakglass.keys.models import RevokedCredential, TrustBundle

ROOT = Path(__file__).resolve().parents[2]
REVOKER = (
    "import sys, django; django.setup(); "
    "from tests.keys.test_revocation_publishing import _main; _main(sys.argv[1:])"
)


def _listed(document: dict) -> set[str]:
    return {entry["jti"] for entry in document["payload"]["revoked_jti"]}


def test_one_transaction_revoking_three_credentials_signs_one_bundle(
    trust, django_capture_on_commit_callbacks
):
    expires = timezone.now() + timedelta(minutes=30)
    with django_capture_on_commit_callbacks(execute=True):
        for jti in ("a", "b", "c"):
            services.credential_revoke(jti=jti, expires_at=expires, reason="laptop stolen")
        assert TrustBundle.objects.count() == 1  # nothing is signed inside the transaction
    assert TrustBundle.objects.count() == 2
    latest = selectors.bundle_latest()
    assert _listed(latest.document) == {"a", "b", "c"}
    assert set(RevokedCredential.objects.values_list("bundle_version", flat=True)) == {2}
    on_disk = json.loads(selectors.published_bundle_path().read_text())
    assert on_disk["payload"]["version"] == 2


def test_a_revocation_whose_publish_never_ran_is_published_by_the_safety_net(
    trust, django_capture_on_commit_callbacks
):
    from breakglass.keys.tasks import revocations_publish_task

    # COMMIT went through, then the process died before its on-commit publish.
    with django_capture_on_commit_callbacks(execute=False):
        services.credential_revoke(
            jti="orphan", expires_at=timezone.now() + timedelta(minutes=30), reason="r"
        )
    assert list(selectors.revocations_unpublished().values_list("jti", flat=True)) == ["orphan"]
    assert selectors.bundle_latest_version() == 1

    with django_capture_on_commit_callbacks(execute=True):
        assert revocations_publish_task.apply().get() == 2
    assert "orphan" in _listed(selectors.bundle_current())
    assert not selectors.revocations_unpublished().exists()
    assert revocations_publish_task.apply().get() is None  # nothing left: no new bundle


def test_the_scheduled_refresh_also_publishes_a_waiting_revocation(
    trust, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        services.credential_revoke(
            jti="orphan", expires_at=timezone.now() + timedelta(minutes=30), reason="r"
        )
    assert services.bundle_refresh().version == 2
    assert "orphan" in _listed(selectors.bundle_current())


def test_a_publish_that_fails_after_the_commit_says_the_revocation_stands(
    trust, django_capture_on_commit_callbacks, settings, tmp_path
):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    settings.TRUST_PUBLISH_DIR = blocker  # the files cannot be written
    with (
        pytest.raises(services.RevocationNotPublished, match="The credential is revoked, but"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.credential_revoke(
            jti="t", expires_at=timezone.now() + timedelta(minutes=30), reason="r"
        )
    assert RevokedCredential.objects.filter(jti="t").exists()


# --- Real processes on PostgreSQL -------------------------------------------------------


def _start(argv_each: list[list[str]], *, env: dict, tmp_path: Path) -> list[subprocess.Popen]:
    go_file = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", REVOKER, str(tmp_path / f"ready-{n}"), str(go_file), *argv],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n, argv in enumerate(argv_each)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < len(procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    go_file.touch()
    return procs


def _results(procs: list[subprocess.Popen]) -> list[dict]:
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
        results.append(json.loads(out.splitlines()[-1]))
    return results


def _env(settings, tmp_path: Path) -> dict:
    from devkit.workers import worker_env

    # Their own data folder (so their published files are one shared, private copy), and
    # this process's key-encryption key, to use the root keys bootstrapped here.
    return worker_env(
        BREAKGLASS_DATA_DIR=str(tmp_path / "data"), BREAKGLASS_KEK=settings.BREAKGLASS_KEK
    )


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_concurrent_revokers_each_return_only_once_their_revocation_is_published(
    settings, tmp_path
):
    services.keys_bootstrap()
    jtis = [[f"w{n}-{i}" for i in range(6)] for n in range(4)]
    results = _results(_start(jtis, env=_env(settings, tmp_path), tmp_path=tmp_path))

    for mine, result in zip(jtis, results, strict=True):
        # Right after each call returned: in the bundle served (the database) and on disk.
        assert result["served"] == mine
        assert result["on_disk"] == mine
    latest = selectors.bundle_current()
    assert _listed(latest) == {jti for mine in jtis for jti in mine}  # nothing lost
    assert not selectors.revocations_unpublished().exists()
    versions = list(TrustBundle.objects.order_by("version").values_list("version", flat=True))
    assert versions == list(range(1, len(versions) + 1))  # one chain, no version reused
    assert len(versions) <= 1 + sum(map(len, jtis))


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_revocations_arriving_while_a_bundle_is_signed_ride_the_next_one_together(
    settings, tmp_path
):
    import psycopg

    from devkit.workers import test_database_url

    services.keys_bootstrap()
    # Another publisher holds the trust lock, as while it signs a bundle.
    publisher = psycopg.connect(test_database_url())
    publisher.execute("SELECT pg_advisory_xact_lock(%s)", [services._PG_LOCK_KEY])
    jtis = [["a"], ["b"], ["c"]]
    procs = _start(jtis, env=_env(settings, tmp_path), tmp_path=tmp_path)
    try:
        # All three have committed their revocation and queue for the lock.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            committed = RevokedCredential.objects.count()
            waiting = publisher.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()[0]
            if committed == 3 and waiting == 3:
                break
            time.sleep(0.05)
        assert (committed, waiting) == (3, 3)
        assert TrustBundle.objects.count() == 1
    finally:
        publisher.rollback()  # the other publisher is done
        publisher.close()
    results = _results(procs)

    assert [result["served"] for result in results] == jtis
    # The first through signed one bundle for all three; the others found theirs in it.
    assert TrustBundle.objects.count() == 2
    assert _listed(selectors.bundle_current()) == {"a", "b", "c"}
    assert set(RevokedCredential.objects.values_list("bundle_version", flat=True)) == {2}


def _main(argv: list[str]) -> None:
    """One revoker: connect, say so, wait for the others, then revoke each jti and note
    whether the served bundle and the published file list it as soon as the call returns."""
    from django.db import connection

    ready, go_file, *jtis = argv
    connection.ensure_connection()
    Path(ready).touch()
    while not Path(go_file).exists():
        time.sleep(0.005)
    served, on_disk = [], []
    for jti in jtis:
        services.credential_revoke(
            jti=jti, expires_at=timezone.now() + timedelta(minutes=30), reason="stolen"
        )
        if jti in _listed(selectors.bundle_current()):
            served.append(jti)
        if jti in _listed(json.loads(selectors.published_bundle_path().read_text())):
            on_disk.append(jti)
    print(json.dumps({"pid": os.getpid(), "served": served, "on_disk": on_disk}))
