"""Shared by the keys commands: read/write JSON files with clear errors, never tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import CommandError


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
    from breakglass.keys.services import _write_json_atomic

    try:
        _write_json_atomic(Path(path), value)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror}") from None
