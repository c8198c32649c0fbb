"""Why there is no PAM route (docs/integrations/pam.md), shown with the real Linux-PAM stack.

`pam_exec expose_authtok` hands its program at most PAM_MAX_RESP_SIZE - 1 = 511 bytes of
the typed password. A Breakglass token with several approvers is longer, so a hook behind
pam_exec only ever sees a truncated token. If this test starts failing, Linux-PAM lifted
the limit and the route can come back, tested end to end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integrations.hosts import private_root_directory, require_program

PAM_DIR = Path("/etc/pam.d")


@pytest.fixture
def pam_service():
    """A private PAM service file under a unique /etc/pam.d/ name, removed afterwards; its
    pam_exec hook records exactly the bytes it was given."""
    require_program("/usr/bin/pamtester", "pamtester")
    directory = private_root_directory("breakglass-pam-")
    name = f"breakglass-test-{os.urandom(4).hex()}"
    received = directory / "received"
    hook = directory / "hook"
    hook.write_text(f"#!/bin/sh\ncat > {received}\n")
    hook.chmod(0o755)
    service = PAM_DIR / name
    service.write_text(
        f"auth required pam_exec.so quiet expose_authtok {hook}\naccount required pam_permit.so\n"
    )
    try:
        yield name, received
    finally:
        service.unlink(missing_ok=True)
        shutil.rmtree(directory, ignore_errors=True)


def test_pam_exec_truncates_the_longest_demo_token(pam_service, live_trust):
    name, received = pam_service
    token = live_trust.token(
        approvers=["alex-approver", "bea-approver", "carl-approver", "dora-approver", "eve-sec"],
        scope="ssh:login db:read db:admin sso:admin",
        incident="INC-2026-0042",
        path="database-admin-ssh",
        jti="6f1c2a9e-1d2b-4c3d-9e8f-0a1b2c3d4e5f",
    )
    assert len(token) > 600
    result = subprocess.run(
        ["pamtester", name, "root", "authenticate"],
        input=token + "\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr  # the stack ran the hook
    seen = received.read_bytes().rstrip(b"\0")
    assert len(seen) == 511
    assert seen == token.encode()[:511]
