"""Every management command reports an unreachable database in one line and exits 75
(EX_TEMPFAIL), without a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    "argv",
    [
        ["issue_grant", "--user", "rita", "--path", "sso-backup", "--reason", "outage"],
        ["verify_audit"],
        ["migrate", "--noinput"],
    ],
)
def test_a_command_with_the_database_down_says_so_in_one_line(argv, tmp_path):
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{_closed_port()}/breakglass",
        BREAKGLASS_DATA_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 75, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{argv[0]}: the database is unreachable (")
