"""A small fixed-window rate limiter shared by every process, on the database.

Used for the doors anyone can knock on: password log-in and the OTP step (per client),
and the public subscribe and confirm links (per client and per target address or link).
Each counts one hit per request with a single upsert and refuses once the window's count
is over the limit, answering how long to wait.

Why the database: production has no shared cache (CACHES is the per-process default), and
Redis being down must not switch limits off. The cost is one indexed upsert per request
on those endpoints, outside any audit lock.

Failing: if the counter cannot be written (the database is failing), log-in and OTP fail
open, because failing closed would lock responders out of break-glass at the worst
moment (and the per-username back-off and django-otp's per-device throttle still hold);
subscribe and confirm fail closed: they are public and not needed to get access.
"""

from __future__ import annotations

import hashlib
import logging
import secrets

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from breakglass.accounts.models import RateLimitCounter

log = logging.getLogger(__name__)

_UPSERT = """
INSERT INTO {table} (bucket, "window", hits, expires_at) VALUES (%s, %s, 1, %s)
ON CONFLICT (bucket) DO UPDATE SET
    hits = CASE WHEN {table}."window" = excluded."window" THEN {table}.hits + 1 ELSE 1 END,
    "window" = excluded."window",
    expires_at = excluded.expires_at
RETURNING hits
"""


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or behind a reverse proxy the last address the
    proxy appended to BREAKGLASS_CLIENT_IP_HEADER (e.g. X-Forwarded-For). Only the last
    entry: earlier ones are whatever the client chose to send."""
    header = getattr(settings, "BREAKGLASS_CLIENT_IP_HEADER", "")
    if header:
        value = request.META.get("HTTP_" + header.upper().replace("-", "_"), "")
        last = value.split(",")[-1].strip()
        if last:
            return last
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _bucket(scope: str, key: str) -> str:
    return hashlib.sha256(f"{scope}\0{key.strip().lower()}".encode()).hexdigest()


def ratelimit_hit(*, scope: str, key: str, limit: tuple[int, int], fail_open: bool) -> int:
    """Count one request for (scope, key). Returns 0 if it is within `limit`
    (count, seconds), else the seconds until the window resets."""
    count, seconds = limit
    now = int(timezone.now().timestamp())
    window = now // seconds
    expires_at = (window + 1) * seconds
    table = connection.ops.quote_name(RateLimitCounter._meta.db_table)
    try:
        with transaction.atomic():  # a savepoint when called inside a transaction
            with connection.cursor() as cursor:
                cursor.execute(
                    _UPSERT.format(table=table), [_bucket(scope, key), window, expires_at]
                )
                hits = cursor.fetchone()[0]
            if secrets.randbelow(200) == 0:  # now and then, forget finished windows
                RateLimitCounter.objects.filter(expires_at__lt=now).delete()
    except DatabaseError as exc:
        log.warning(
            "rate limit %s unavailable (%s); failing %s",
            scope,
            exc,
            "open" if fail_open else "closed",
        )
        return 0 if fail_open else seconds
    return 0 if hits <= count else max(1, expires_at - now)


def wait_message(seconds: int) -> str:
    if seconds < 120:
        return f"Too many attempts. Try again in {seconds} seconds."
    return f"Too many attempts. Try again in {(seconds + 59) // 60} minutes."
