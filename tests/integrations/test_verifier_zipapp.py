"""breakglass-verifier.pyz: the Django-free core as one file, run by Debian's python3."""

import json
import subprocess
import zipfile

from breakglass.core.build import build_verifier
from devkit import keykit as kit

# What a host has: no virtual environment, no checkout, no PYTHONPATH.
HOST_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def run(command, *arguments, stdin: bytes = b"", cwd="/"):
    return subprocess.run(
        [*command, *arguments], input=stdin, capture_output=True, env=HOST_ENV, cwd=cwd
    )


def test_the_build_holds_only_the_core_and_is_reproducible(tmp_path):
    first = build_verifier(out=str(tmp_path / "a.pyz"))
    second = build_verifier(out=str(tmp_path / "b.pyz"))
    assert open(first, "rb").read() == open(second, "rb").read()
    names = zipfile.ZipFile(first).namelist()
    assert "__main__.py" in names and "breakglass/core/token.py" in names
    assert all(n == "__main__.py" or n.startswith("breakglass/") for n in names)
    assert not [n for n in names if n.startswith(("breakglass/access", "breakglass/project"))]


def test_the_system_python_accepts_a_valid_token_with_the_single_file(verifier_command, tmp_path):
    (tmp_path / "bundle.json").write_bytes(kit.dumps(kit.bundle()))
    (tmp_path / "roots.json").write_bytes(kit.dumps(kit.roots()))
    result = run(
        verifier_command,
        "verify",
        "--bundle",
        str(tmp_path / "bundle.json"),
        "--roots",
        str(tmp_path / "roots.json"),
        "--audience",
        "sso",
        "--now",
        str(kit.NOW),
        "--json",
        "-",
        stdin=kit.token().encode(),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["claims"]["sub"] == "rita-responder"
    assert b"Traceback" not in result.stderr


def test_the_single_file_refuses_a_revoked_token_and_garbage_without_a_traceback(
    verifier_command, tmp_path
):
    (tmp_path / "bundle.json").write_bytes(kit.dumps(kit.bundle()))
    (tmp_path / "roots.json").write_bytes(kit.dumps(kit.roots()))
    common = ["--bundle", str(tmp_path / "bundle.json"), "--roots", str(tmp_path / "roots.json")]
    common += ["--audience", "sso", "--now", str(kit.NOW)]
    revoked = run(verifier_command, "verify", *common, kit.token(jti="revoked-jti-0001"))
    assert revoked.returncode == 1
    assert revoked.stderr.startswith(b"REJECT revoked:")
    garbage = run(verifier_command, "verify", *common, "-", stdin=b"\xff\x00" * 40)
    assert garbage.returncode == 1
    assert b"Traceback" not in garbage.stderr
