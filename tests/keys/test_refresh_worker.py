"""The scheduler's refresh task, run by a real Celery worker over Redis."""

import json
from pathlib import Path

import pytest
from django.conf import settings
from kombu import pools

from breakglass.keys import services
from breakglass.keys.models import TrustBundle
from devkit.workers import celery_worker, real_broker, wait_for, worker_env


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_worker_republishes_a_bundle_that_is_due(tmp_path):
    services.keys_bootstrap()
    env = worker_env(
        # Same KEK as this process (the worker decrypts the root keys), its own data dir,
        # and a refresh margin longer than the bundle lifetime so the refresh is due now.
        BREAKGLASS_KEK=settings.BREAKGLASS_KEK,
        SECRET_KEY=settings.SECRET_KEY,
        BREAKGLASS_DATA_DIR=str(tmp_path),
        BREAKGLASS_ISSUER=settings.BREAKGLASS_ISSUER,
        BREAKGLASS_BUNDLE_REFRESH_MARGIN_HOURS="48",
    )
    # real_broker() force-closes its pool on exit, but kombu's global registry keeps handing
    # that closed pool out for the same URL: start from, and leave, a clean registry so
    # this test and the next one to use the broker work in any order.
    pools.reset()
    try:
        _run_refresh_on_worker(env)
    finally:
        pools.reset()
    published = tmp_path / "test-trust" / "bundle.json"
    assert json.loads(published.read_text())["payload"]["version"] == 2
    assert TrustBundle.objects.get(version=2).reason == "scheduled refresh"


def _run_refresh_on_worker(env) -> None:
    published = Path(env["BREAKGLASS_DATA_DIR"]) / "test-trust" / "bundle.json"
    with real_broker() as app:
        app.control.purge()
        with celery_worker(env=env, concurrency=1):
            app.send_task("breakglass.keys.tasks.bundle_refresh")
            wait_for(
                lambda: TrustBundle.objects.filter(version=2).exists(),
                timeout=60,
                what="the worker to publish version 2",
            )
            wait_for(published.exists, what="the worker to write bundle.json")
