"""`/healthz` and `/readyz` for load balancers and monitors: unauthenticated and cheap.

/healthz  the process answers (no database, no broker): restart it if this fails.
/readyz   the parts this node needs answer within a bound, and the trust material is
          fresh: 200 {"status": "ok"|"warn", "checks": {...}} or 503 {"status": "fail"}.

Failing (503): the database or the broker cannot be reached, or no bundle is published,
or the published bundle has expired (every normal token is refused by verifiers).
Warning (200): the bundle expires within BREAKGLASS_BUNDLE_REFRESH_MARGIN_HOURS, or an
active kit has a problem the kits page names (`keys.selectors.kits_status`: expiring or
expired, used and needing new shares, too few custodians checked, SSH policy drift).
Bodies name parts and states only, never hosts, URLs or error text (they are public).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from breakglass.accounts.decorators import public

_BROKER_TIMEOUT_SECONDS = 1.0


@public
@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _database() -> tuple[str, str]:
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure means "not ready"; details stay in logs
        return "fail", "unreachable"
    return "ok", "reachable"


def _broker() -> tuple[str, str]:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        return "ok", "local folder"
    try:
        import redis

        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=_BROKER_TIMEOUT_SECONDS,
            socket_timeout=_BROKER_TIMEOUT_SECONDS,
        )
        try:
            client.ping()
        finally:
            client.close()
    except Exception:  # noqa: BLE001
        return "fail", "unreachable"
    return "ok", "reachable"


def _bundle(now) -> tuple[str, str]:
    from breakglass.keys.selectors import bundle_latest

    latest = bundle_latest()
    if latest is None:
        return "fail", "none published"
    if latest.expires_at <= now:
        return "fail", f"version {latest.version} expired at {latest.expires_at.isoformat()}"
    margin = timedelta(hours=settings.BREAKGLASS_BUNDLE_REFRESH_MARGIN_HOURS)
    state = "warn" if latest.expires_at - now <= margin else "ok"
    return state, f"version {latest.version} expires at {latest.expires_at.isoformat()}"


def _kits(now) -> tuple[str, str]:
    """Active kits, judged by the kits page's own rule (`kits_status`): expiry, use (re-key),
    custodians' checks, and SSH policy drift."""
    from breakglass.keys.selectors import kits_status

    statuses = kits_status(now=now, include_retired=False)
    if not statuses:
        return "warn", "no active kit"
    problems = [f"{s.kit.kit_id}: {problem}" for s in statuses for problem in s.problems]
    if problems:
        return "warn", "; ".join(problems)
    next_expiry = min(s.kit.not_after for s in statuses)
    return "ok", f"{len(statuses)} active, next expiry {next_expiry.isoformat()}"


@public
@never_cache
@require_GET
def readyz(request):
    now = timezone.now()
    checks = {"database": _database(), "broker": _broker()}
    if checks["database"][0] == "ok":
        checks["bundle"] = _bundle(now)
        checks["kits"] = _kits(now)
    else:
        checks["bundle"] = checks["kits"] = ("fail", "database unreachable")
    states = {state for state, _ in checks.values()}
    status = "fail" if "fail" in states else "warn" if "warn" in states else "ok"
    return JsonResponse(
        {
            "status": status,
            "checks": {name: {"state": s, "detail": d} for name, (s, d) in checks.items()},
        },
        status=503 if status == "fail" else 200,
    )
