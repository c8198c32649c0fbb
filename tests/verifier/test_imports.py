"""The verifier stays Django-free and light: it runs inside other teams' services."""

import pkgutil
import subprocess
import sys

import breakglass.core

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


# The signing side may use hashlib and argparse; no module of the core may use a server part.
SERVER_PARTS = ("django", "celery", "kombu", "redis", "psycopg", "jwt")
CORE_MODULES = sorted(
    f"breakglass.core.{info.name}" for info in pkgutil.iter_modules(breakglass.core.__path__)
)


def test_the_core_has_the_modules_this_test_checks():
    assert {"breakglass.core.token", "breakglass.core.signing", "breakglass.core.files"} <= set(
        CORE_MODULES
    )


def test_no_module_of_the_core_imports_django_celery_or_a_server_part():
    statement = "; ".join(
        f"import {name}" for name in CORE_MODULES if not name.endswith("__main__")
    )
    modules = imported_modules(statement)
    assert set(CORE_MODULES) - {"breakglass.core.__main__"} <= modules
    leaked = sorted(m for m in modules if m.split(".")[0] in SERVER_PARTS)
    assert leaked == []
