"""Which real services this run has, and what to do when one is missing."""

from __future__ import annotations

import os
import shutil
import socket
from functools import cache
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1
        ):
            return True
    except OSError:
        return False


@cache
def missing_for_integration() -> str | None:
    db = os.environ.get("DATABASE_URL", "")
    if not db.startswith(("postgres://", "postgresql://")):
        return "DATABASE_URL does not point at PostgreSQL"
    if not _reachable(db, 5432):
        return f"PostgreSQL at {urlsplit(db).hostname} is not reachable"
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        return "REDIS_URL is not set"
    if not _reachable(redis_url, 6379):
        return f"Redis at {redis_url} is not reachable"
    return None


@cache
def missing_for_browser() -> str | None:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


def skip_or_fail(item, reason: str) -> None:
    """Outside CI, skip with the reason; in CI, fail at setup (see conftest)."""
    if in_ci():
        item.breakglass_missing_service = reason
    else:
        item.add_marker(pytest.mark.skip(reason=f"needs a real service: {reason}"))


def require_program(name: str, *, why: str) -> str:
    """Path of an executable a test needs (e.g. `redis-server` to stage an outage);
    skipped with the reason outside CI, a failure in CI."""
    path = shutil.which(name)
    if path:
        return path
    reason = f"`{name}` is not installed ({why})"
    if in_ci():
        pytest.fail(f"CI must provide this program: {reason}", pytrace=False)
    pytest.skip(f"needs a real service: {reason}")
