"""The verifier stays Django-free and light: it runs inside other teams' services."""

import subprocess
import sys

FORBIDDEN = ("django", "celery", "jwt", "kombu", "redis", "psycopg", "hashlib", "argparse")


def imported_modules(statement: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_importing_the_verifier_pulls_in_no_django_celery_or_pyjwt():
    modules = imported_modules("import breakglass.core, breakglass.core.cli")
    assert "breakglass.core" in modules
    leaked = sorted(m for m in modules if m.split(".")[0] in FORBIDDEN)
    assert leaked == []


def test_the_verifier_uses_only_the_ed25519_part_of_cryptography():
    modules = imported_modules("import breakglass.core.cli")
    heavy = {"cryptography.hazmat.primitives.serialization.ssh", "cryptography.x509"}
    assert not heavy & modules
