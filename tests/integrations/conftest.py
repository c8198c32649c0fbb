"""Fixtures for the verifier on real hosts: the single-file verifier under Debian's python3."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from breakglass.core.build import build_verifier
from tests.integrations.hosts import SYSTEM_PYTHON, LiveTrust, require_program
from tests.integrations.sshd import sshd  # noqa: F401 - fixture: a real sshd on loopback


@pytest.fixture(scope="session")
def verifier_command() -> list[str]:
    """The command line of a freshly built `breakglass-verifier.pyz` run by the *system*
    python3 (Debian's, with python3-cryptography), never this virtual environment: what a
    host runs. Built once per session."""
    python = require_program(SYSTEM_PYTHON, "python3 python3-cryptography")
    probe = subprocess.run(
        [python, "-c", "import cryptography.hazmat.primitives.asymmetric.ed25519"],
        capture_output=True,
    )
    if probe.returncode != 0:
        require_program("/usr/lib/python3/dist-packages/cryptography", "python3-cryptography")
    # Outside pytest's 0700 temporary tree: unprivileged users (sshd's gate user, the
    # sudo target) must be able to read it, as they would read /usr/local/lib/ on a host.
    directory = Path(tempfile.mkdtemp(prefix="breakglass-verifier-"))
    directory.chmod(0o755)
    try:
        yield [python, build_verifier(out=str(directory / "breakglass-verifier.pyz"))]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def live_trust() -> LiveTrust:
    return LiveTrust()
