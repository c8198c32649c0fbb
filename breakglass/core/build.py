"""Build `breakglass-verifier.pyz`: the Django-free core as one file for hosts.

    python -m breakglass.core.build --out dist/breakglass-verifier.pyz   # or scripts/build-verifier

The result is a zipapp (PEP 441) holding `breakglass/__init__.py` and every module of
`breakglass/core/`, nothing else: it runs with a stock `python3` (3.11 or later) and the
distribution's `cryptography` (Debian: `apt-get install python3 python3-cryptography`), so
a host needs neither Django, Celery, a virtual environment nor a copy of this repository:

    python3 breakglass-verifier.pyz verify --bundle ... --roots ... --audience sso -

The archive is reproducible: members are sorted and stamped with a fixed date, so two
builds of the same source are byte-identical and a host can pin the file's SHA-256.
"""

from __future__ import annotations

import io
import os
import sys
import zipfile

from breakglass.core.files import file_write_atomic

SHEBANG = b"#!/usr/bin/env python3\n"
FIXED_DATE = (2020, 1, 1, 0, 0, 0)  # zip timestamps: fixed, so builds are reproducible
MAIN = b'''"""breakglass-verifier.pyz: the offline Breakglass verifier (see docs/verifier.md)."""

import sys

from breakglass.core.cli import main

sys.exit(main())
'''


def _members(package_root: str) -> list[tuple[str, str]]:
    """(archive name, file on disk) for breakglass/__init__.py and breakglass/core/*.py."""
    core = os.path.join(package_root, "core")
    members = [("breakglass/__init__.py", os.path.join(package_root, "__init__.py"))]
    for name in sorted(os.listdir(core)):
        if name.endswith(".py") and name not in ("__main__.py", "build.py"):
            members.append((f"breakglass/core/{name}", os.path.join(core, name)))
    return members


def build_verifier(*, out: str) -> str:
    """Write the zipapp to `out` atomically (mode 0755); return its path."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    directory = os.path.dirname(os.path.abspath(out))
    os.makedirs(directory, exist_ok=True)
    buffer = io.BytesIO()
    buffer.write(SHEBANG)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in _members(package_root):
            with open(path, "rb") as source:
                _add(archive, name, source.read())
        _add(archive, "__main__.py", MAIN)
    # 0755: a program every host user may run.
    file_write_atomic(out, buffer.getvalue(), mode=0o755)
    return out


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "--out":
        print("usage: python -m breakglass.core.build --out FILE.pyz", file=sys.stderr)
        return 2
    print(build_verifier(out=argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
