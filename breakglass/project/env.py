"""Typed readers for configuration from environment variables.

Every reader names the variable in its error, so a misconfigured deployment says
exactly what to fix. Every value can also come from `<NAME>_FILE` (Docker/Kubernetes
secrets), which wins over the plain variable; a trailing newline in the file is ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    """The variable's value, from `<NAME>_FILE` when that is set, else from `<NAME>`."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {file_name!r}: {exc}") from exc
    return os.environ.get(name)


def env_str(name: str, default: str | None = None) -> str | None:
    raw = _raw(name)
    return default if raw is None else raw


def env_bool(name: str, default: bool = False) -> bool:
    raw = _raw(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}: expected a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = _raw(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}: must be at least {minimum}, got {value}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = _raw(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}: expected one of {', '.join(choices)}, got {raw!r}")
    return value


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = _raw(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_rate(name: str, default: str) -> tuple[int, int]:
    """A rate limit written `COUNT/SECONDS` (e.g. `10/3600`: ten per hour)."""
    raw = _raw(name)
    text = default if raw is None or raw.strip() == "" else raw.strip()
    count, _, seconds = text.partition("/")
    try:
        limit = (int(count), int(seconds))
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected COUNT/SECONDS, got {text!r}") from None
    if limit[0] < 1 or limit[1] < 1:
        raise ImproperlyConfigured(f"{name}: COUNT and SECONDS must be at least 1, got {text!r}")
    return limit


def database_from_url(name: str, url: str) -> dict:
    """Parse `postgres://user:pass@host:port/db` or `sqlite:///path` into a DATABASES entry.

    SQLite follows the usual convention: `sqlite:///relative.db`, `sqlite:////absolute.db`.
    Errors never echo the URL, which may hold a password.
    """
    from urllib.parse import parse_qs, unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme in ("postgres", "postgresql", "pgsql"):
        if not parts.path.strip("/"):
            raise ImproperlyConfigured(f"{name}: no database name after the host")
        try:
            port = parts.port
        except ValueError:
            raise ImproperlyConfigured(f"{name}: the port is not a number") from None
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            "OPTIONS": options,
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    if parts.scheme == "sqlite":
        # urlsplit keeps the slash after the (empty) host: "/relative.db" or "//absolute.db".
        path = unquote(parts.path)[1:]
        return sqlite_database(path or ":memory:")
    raise ImproperlyConfigured(
        f"{name}: unsupported scheme {parts.scheme!r} (use postgres:// or sqlite:///)"
    )


def sqlite_database(path: str) -> dict:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        # IMMEDIATE takes the write lock when a transaction starts, so two writers
        # never both read the audit chain's head and then race to append to it.
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }


def kek_problem(value: str | None) -> str | None:
    """What is wrong with a key-encryption key, or None: it must be 32 random bytes in
    URL-safe base64 (padding optional), e.g. `python -c "import secrets, base64;
    print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())"`."""
    import base64
    import binascii

    if not value:
        return "is empty"
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return "is not URL-safe base64"
    if len(raw) != 32:
        return f"must decode to 32 bytes, got {len(raw)}"
    return None
