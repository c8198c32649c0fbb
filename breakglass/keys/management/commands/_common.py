"""Shared by the keys commands: read/write JSON files with clear errors, never tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import CommandError

from breakglass.core.files import file_write_atomic


def json_read(path: str) -> dict:
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise CommandError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CommandError(f"{path} must contain a JSON object")
    return value


def json_write(path: str, value: dict) -> None:
    try:
        encoded = json.dumps(value, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        file_write_atomic(path, encoded, mode=0o644)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror}") from None
