"""BREAKGLASS_ENV=production: refuses to start without real secrets, and passes
`manage.py check --deploy` without a single warning once they are given."""

import base64
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def production_env(tmp_path, **overrides) -> dict:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "breakglass.project.settings",
        "BREAKGLASS_ENV": "production",
        "BREAKGLASS_DATA_DIR": str(tmp_path / "data"),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "BREAKGLASS_KEK": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "ALLOWED_HOSTS": "breakglass.example.com",
    }
    env.update(overrides)
    return {name: value for name, value in env.items() if value is not None}


def run(args, env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_passes_with_real_looking_secrets(tmp_path):
    # The secret key comes from a *_FILE, as with Docker or Kubernetes secrets.
    key_file = tmp_path / "secret_key"
    key_file.write_text(secrets.token_urlsafe(50) + "\n")
    env = production_env(tmp_path, SECRET_KEY=None, SECRET_KEY_FILE=str(key_file))
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "BREAKGLASS_KEK", "ALLOWED_HOSTS"])
def test_a_missing_secret_stops_start_up_naming_it(tmp_path, missing):
    result = run(["manage.py", "check", "--deploy"], production_env(tmp_path, **{missing: None}))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"Configuration error: BREAKGLASS_ENV=production needs {missing}" in result.stderr


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("SECRET_KEY", "too-short", "SECRET_KEY: must be at least 50 random characters"),
        ("BREAKGLASS_KEK", "c2hvcnQ=", "BREAKGLASS_KEK: must decode to 32 bytes, got 5"),
        ("DEBUG", "1", "DEBUG: must be off when BREAKGLASS_ENV=production"),
        ("SESSION_COOKIE_AGE", "a day", "SESSION_COOKIE_AGE: expected an integer"),
        ("COMMS_CADENCE_SEV1_MINUTES", "0", "COMMS_CADENCE_SEV1_MINUTES: must be at least 1"),
        ("DRILLS_SINK_ENABLED", "maybe", "DRILLS_SINK_ENABLED: expected a boolean"),
        ("DRILLS_LEASE_SECONDS", "3m", "DRILLS_LEASE_SECONDS: expected an integer"),
    ],
)
def test_a_bad_value_stops_start_up_naming_it(tmp_path, name, value, message):
    result = run(["manage.py", "check"], production_env(tmp_path, **{name: value}))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert message in result.stderr


def test_production_turns_on_every_transport_security_setting(tmp_path):
    script = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({n: getattr(s, n) for n in ("
        "'DEBUG', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', "
        "'SESSION_COOKIE_NAME', 'CSRF_COOKIE_NAME', 'SECURE_SSL_REDIRECT', "
        "'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'X_FRAME_OPTIONS')}))"
    )
    result = run(["-c", script], production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["SESSION_COOKIE_HTTPONLY"]
    assert values["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert values["CSRF_COOKIE_NAME"].startswith("__Host-")
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31536000 and values["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
    assert values["X_FRAME_OPTIONS"] == "DENY"


def test_production_workers_reconnect_forever_and_recover_lost_tasks_in_stated_time(tmp_path):
    script = (
        "import django, json; django.setup(); from breakglass.project.celery import app; "
        "c = app.conf; print(json.dumps({'retry': c.broker_connection_retry, "
        "'max_retries': c.broker_connection_max_retries, "
        "'options': c.broker_transport_options, 'acks_late': c.task_acks_late}))"
    )
    env = production_env(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0")
    result = run(["-c", script], env)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    # Celery's default (100 tries) made workers exit for good after ~46 minutes of outage.
    assert values["retry"] is True and values["max_retries"] is None
    # Stated, not kombu's one-hour default; longer than any task's hard time limit.
    assert values["options"]["visibility_timeout"] == 900
    assert values["acks_late"] is True
