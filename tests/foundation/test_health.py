"""/healthz and /readyz: unauthenticated, cheap, and honest about what is down."""

import json
import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from breakglass.keys.kits import kit_create
from breakglass.keys.services import keys_bootstrap
from devkit.redis_server import private_redis

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def trust(db, settings, django_capture_on_commit_callbacks):
    settings.BREAKGLASS_ISSUER = "https://breakglass.test"
    settings.CELERY_BROKER_URL = "filesystem://"
    with django_capture_on_commit_callbacks(execute=True):
        keys_bootstrap()


def kit_make(kit_id="kit-ops", valid_days=730, *, checked=True):
    """A 2-of-2 kit; `checked`: both custodians proved their share just now."""
    kit = kit_create(
        kit_id=kit_id,
        audiences=["sso"],
        scopes=["ssh:login"],
        max_lifetime_minutes=60,
        custodians=[("Alice", None), ("Bob", None)],
        threshold=2,
        valid_days=valid_days,
    )[0]
    if checked:
        kit.custodians.update(last_checked_at=timezone.now())
    return kit


def ready() -> tuple[int, dict]:
    response = Client().get("/readyz")
    return response.status_code, response.json()


def test_healthz_answers_without_a_session_or_a_database_query(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = Client().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_is_ok_with_a_fresh_bundle_a_kit_and_reachable_parts(trust):
    kit_make()
    status, body = ready()
    assert status == 200 and body["status"] == "ok", body
    assert body["checks"]["database"]["state"] == "ok"
    assert body["checks"]["kits"]["detail"].startswith("1 active")


def test_readyz_fails_once_the_bundle_has_expired(trust):
    kit_make()
    with time_machine.travel(timezone.now() + timedelta(days=3)):
        status, body = ready()
    assert status == 503
    assert body["checks"]["bundle"]["state"] == "fail"
    assert "expired" in body["checks"]["bundle"]["detail"]


def test_readyz_warns_of_what_the_kits_page_flags(trust):
    """The kits page's rule, not a second copy: near expiry, used, custodians unchecked."""
    kit = kit_make(valid_days=10)
    status, body = ready()
    assert status == 200 and body["status"] == "warn"
    assert "kit-ops: expires " in body["checks"]["kits"]["detail"]
    kit.rekey_needed_at = timezone.now()
    kit.save()
    assert "kit-ops: used: make a new kit" in ready()[1]["checks"]["kits"]["detail"]


def test_readyz_warns_of_a_kit_whose_custodians_have_not_checked_their_shares(trust):
    kit_make(checked=False)
    status, body = ready()
    assert status == 200 and body["status"] == "warn"
    assert "only 0 of 2 needed custodians checked" in body["checks"]["kits"]["detail"]


def test_readyz_fails_while_the_broker_is_down_and_recovers(trust, settings):
    kit_make()
    with private_redis() as redis:
        settings.CELERY_BROKER_URL = redis.url
        assert ready()[1]["checks"]["broker"]["state"] == "ok"
        redis.stop()
        status, body = ready()
        assert status == 503 and body["checks"]["broker"] == {
            "state": "fail",
            "detail": "unreachable",
        }
        redis.start()
        assert ready()[0] == 200


def test_readyz_fails_when_the_database_is_unreachable():
    """A separate process, configured with a database URL on a closed port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    program = (
        "import django; django.setup(); from django.test.utils import setup_test_environment; "
        "setup_test_environment(); from django.test import Client; "
        "r = Client().get('/readyz'); print(r.status_code, r.content.decode())"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/gone",
            "PYTHONPATH": str(ROOT),
        },
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    status, body = result.stdout.split(" ", 1)
    assert status == "503", result.stderr
    checks = json.loads(body)["checks"]
    assert checks["database"] == {"state": "fail", "detail": "unreachable"}
    assert "Traceback" not in result.stderr
