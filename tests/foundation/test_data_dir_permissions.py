"""The data folder holds the SQLite database (session keys, TOTP secrets), the KEK and
the broker's messages: another local user must not be able to read any of it, whatever
umask the operator started the service with."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks

ROOT = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def _start_under_umask_022(tmp_path, args) -> Path:
    data = tmp_path / "data"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "breakglass.project.settings",
        "BREAKGLASS_DATA_DIR": str(data),
    }
    subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
        preexec_fn=lambda: os.umask(0o022),  # what most shells and unit files give
    )
    return data


def _assert_private(data: Path) -> dict:
    created = {p.relative_to(data).as_posix(): _mode(p) for p in data.rglob("*")}
    assert _mode(data) == "0o700"
    assert created[".secret_key"] == "0o600"
    assert created[".kek"] == "0o600"
    assert created["broker/queue"] == "0o700"
    assert {mode for mode in created.values()} <= {"0o600", "0o700"}
    return created


def test_manage_py_creates_a_private_data_folder_under_a_permissive_umask(tmp_path):
    script = (
        "from django.db import connection; cursor = connection.cursor(); "
        "cursor.execute('CREATE TABLE t (x int)'); cursor.execute('INSERT INTO t VALUES (1)')"
    )
    data = _start_under_umask_022(tmp_path, ["manage.py", "shell", "-c", script])
    assert _assert_private(data)["breakglass.sqlite3"] == "0o600"


def test_the_wsgi_application_creates_a_private_data_folder(tmp_path):
    data = _start_under_umask_022(tmp_path, ["-c", "import breakglass.project.wsgi"])
    _assert_private(data)


@pytest.fixture
def data_dir(settings, tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    os.chmod(data, 0o700)
    settings.DATA_DIR = data
    settings.TRUST_PUBLISH_DIR = data / "trust"
    settings.STATUS_SITE_DIR = tmp_path / "status-site"
    settings.STATIC_ROOT = data / "static"
    return data


def _warnings():
    return [msg for msg in run_checks(tags=["security"]) if msg.id == "breakglass.W001"]


def test_check_is_quiet_for_a_private_data_folder(data_dir):
    secret = data_dir / "breakglass.sqlite3"
    secret.write_bytes(b"x")
    os.chmod(secret, 0o600)
    assert _warnings() == []


def test_check_warns_about_a_world_readable_database(data_dir):
    database = data_dir / "breakglass.sqlite3"
    database.write_bytes(b"x")
    os.chmod(database, 0o644)  # what an older release left behind
    [warning] = _warnings()
    assert f"{database} (-rw-r--r--)" in warning.msg
    assert f"chmod -R go-rwx {data_dir}" in warning.hint


def test_check_warns_about_an_open_data_folder(data_dir):
    os.chmod(data_dir, 0o755)
    [warning] = _warnings()
    assert f"{data_dir} (drwxr-xr-x)" in warning.msg


def test_the_published_trust_bundle_is_public_on_purpose(data_dir):
    published = data_dir / "trust"
    published.mkdir()
    os.chmod(published, 0o755)
    (published / "bundle.json").write_text("{}")
    os.chmod(published / "bundle.json", 0o644)
    assert _warnings() == []


def test_manage_py_check_shows_the_warning(data_dir, capsys):
    from django.core.management import call_command

    loose = data_dir / "mail"
    loose.mkdir()
    os.chmod(loose, 0o775)
    call_command("check")
    assert "breakglass.W001" in capsys.readouterr().err


def test_settings_create_the_data_folder_private_even_without_an_entry_point(tmp_path):
    # A test runner or another program importing the settings keeps its own umask; the
    # folders the settings create are private all the same.
    data = _start_under_umask_022(
        tmp_path, ["-c", "import django; django.setup(); from django.conf import settings"]
    )
    assert _mode(data) == "0o700"
    assert _mode(data / "broker" / "queue") == "0o700"
    assert _mode(data / "broker") == "0o700"


def test_an_existing_open_data_folder_is_closed_when_the_settings_load(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o755)  # as an older release left it
    _start_under_umask_022(tmp_path, ["-c", "import django; django.setup()"])
    assert _mode(data) == "0o700"
