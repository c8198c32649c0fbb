"""The demo's "get a code" command is spelled the same in the seed output, the credentials
file, scripts/run's banner and the README, and works as printed: typed into a shell in the
repository's folder that has not activated the virtual environment."""

from __future__ import annotations

import io
import re
import subprocess

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from breakglass.access.demo_data import DEMO_OTP_COMMAND, MANAGE
from breakglass.accounts.forms import OTPForm
from devkit import workers
from devkit.workers import ROOT

pytestmark = [pytest.mark.django_db(transaction=True)]


def shell(command: str, *, home, data_dir) -> subprocess.CompletedProcess:
    """A fresh shell in the repository's folder: no virtual environment on PATH, only what
    this deployment's own environment says (its database, data folder and so its KEK)."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": workers.test_database_url(),
        "BREAKGLASS_DATA_DIR": str(data_dir),
    }
    return subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_printed_command_prints_a_code_when_typed_as_printed(settings, tmp_path):
    data_dir = settings.DATA_DIR  # where this deployment keeps its KEK
    settings.DATA_DIR = tmp_path  # the demo's credentials files
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    [printed] = re.findall(r"OTP code: +(.+?) +\(in the repository's folder\)", out.getvalue())
    assert printed == DEMO_OTP_COMMAND
    assert f"    {DEMO_OTP_COMMAND}\n" in (tmp_path / "demo-credentials.txt").read_text()

    result = shell(printed.replace("USERNAME", "rita"), home=tmp_path, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    code = result.stdout.strip()
    assert re.fullmatch(r"\d{6}", code)
    assert OTPForm(User.objects.get(username="rita"), {"otp_token": code}).is_valid()
    # What the instructions used to say fails in that same shell: `python` there is not
    # the virtual environment's.
    old = shell("python manage.py demo_otp rita", home=tmp_path, data_dir=data_dir)
    assert old.returncode != 0


def test_the_readme_and_the_run_banner_say_the_same_command():
    assert f"{MANAGE} demo_otp rita" in (ROOT / "README.md").read_text()
    assert DEMO_OTP_COMMAND in (ROOT / "scripts" / "supervise.py").read_text()
