"""`/metrics` in the Prometheus text format, read from the database at scrape time.

Every figure is a query, not a counter kept in memory: the console runs as several web
and worker processes, and an in-process counter would show only the share of whichever
process answered the scrape (and drop to zero on every restart). Counting rows gives the
same answer from any process, including `manage.py serve_metrics`.

Names are a contract with `docs/grafana-dashboard.json` (a test checks that every metric
the dashboard queries is exported here); rename one only together with the dashboard.

Access: a bearer token (`BREAKGLASS_METRICS_TOKEN`), compared in constant time. Without
the setting the route refuses everyone, so metrics (path slugs, incident references) are
never public by accident. The alternative is `manage.py serve_metrics --bind ADDR:PORT`,
which serves the same registry on an address only the monitoring network reaches.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Max, Min
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from breakglass.accounts.decorators import public

# The `kind` label of breakglass_grants_issued_total. "kit" grants are those minted offline
# with the sealed kit and recorded by kit_import (Grant.kit set).
GRANT_KINDS = ("approved", "emergency", "drill", "kit")
# The classic text format every Prometheus version reads (our names need no UTF-8 escaping,
# so the body is the same in format 1.0.0).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def _grant_metrics(now: datetime) -> Iterator[Metric]:
    from breakglass.access.models import Grant

    issued = CounterMetricFamily(
        "breakglass_grants_issued",
        "Credentials issued, by how they were authorised (approved, emergency, drill, kit).",
        labels=["kind"],
    )
    counts = dict.fromkeys(GRANT_KINDS, 0)
    field_names = {f.name for f in Grant._meta.get_fields()}
    if "kind" in field_names:
        # A branch that records the kind explicitly (kit grants) is counted by that field.
        for kind, n in (
            Grant.objects.filter(issued_at__isnull=False)
            .values_list("kind")
            .annotate(n=Count("id"))
            .order_by()
        ):
            counts[str(kind)] = counts.get(str(kind), 0) + n
    else:
        for drill, emergency, from_kit, n in (
            Grant.objects.filter(issued_at__isnull=False)
            .values_list("drill", "emergency", "kit_id")
            .annotate(n=Count("id"))
            .order_by()
        ):
            # Kit grants (recorded by kit_import) are also emergency ones: count them as kit.
            kind = (
                "drill"
                if drill
                else "kit"
                if from_kit is not None
                else "emergency"
                if emergency
                else "approved"
            )
            counts[kind] += n
    for kind, n in counts.items():
        issued.add_metric([kind], n)
    yield issued

    waiting = Grant.objects.filter(
        state=Grant.State.PENDING, drill=False, request_expires_at__gt=now
    ).aggregate(n=Count("id"), oldest=Min("created_at"))
    yield GaugeMetricFamily(
        "breakglass_grant_requests_waiting",
        "Grant requests waiting for approval (not expired).",
        value=waiting["n"],
    )
    yield GaugeMetricFamily(
        "breakglass_grant_request_oldest_wait_seconds",
        "How long the oldest waiting grant request has waited (0 when none is waiting).",
        value=_age(now, waiting["oldest"]) or 0.0,
    )


def _outbox_metrics(now: datetime) -> Iterator[Metric]:
    from breakglass.outbox.models import OutboxMessage

    by_state = dict.fromkeys(OutboxMessage.State.values, 0)
    by_state.update(
        OutboxMessage.objects.exclude(state=OutboxMessage.State.DELIVERED)
        .values_list("state")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_state.pop(OutboxMessage.State.DELIVERED, None)
    backlog = GaugeMetricFamily(
        "breakglass_outbox_messages",
        "Outbox messages not delivered yet, by state (pending, sending, dead).",
        labels=["state"],
    )
    for state, n in sorted(by_state.items()):
        backlog.add_metric([state], n)
    yield backlog
    oldest = (
        OutboxMessage.objects.filter(
            state__in=[OutboxMessage.State.PENDING, OutboxMessage.State.SENDING]
        )
        .aggregate(oldest=Min("created_at"))
        .get("oldest")
    )
    yield GaugeMetricFamily(
        "breakglass_outbox_oldest_pending_age_seconds",
        "Age of the oldest undelivered (pending or sending) outbox message; 0 when none.",
        value=_age(now, oldest) or 0.0,
    )


def _drill_metrics(now: datetime) -> Iterator[Metric]:
    from breakglass.access.models import BackupPath
    from drills.models import DrillRun
    from drills.reports import STALE_DAYS

    paths = list(
        BackupPath.objects.filter(is_active=True)
        .select_related("service")
        .order_by("service__slug", "slug")
    )
    results: dict[tuple[int, str], int] = {
        (path_id, state): n
        for path_id, state, n in DrillRun.objects.filter(
            state__in=[DrillRun.State.PASSED, DrillRun.State.FAILED]
        )
        .values_list("path_id", "state")
        .annotate(n=Count("id"))
        .order_by()
    }
    last_pass = dict(
        DrillRun.objects.filter(state=DrillRun.State.PASSED)
        .values_list("path_id")
        .annotate(last=Max("finished_at"))
        .order_by()
    )
    runs = CounterMetricFamily(
        "breakglass_drill_runs",
        "Finished drill runs per backup path, by result (passed, failed).",
        labels=["path", "service", "result"],
    )
    since_pass = GaugeMetricFamily(
        "breakglass_drill_last_pass_age_seconds",
        "Time since the path's last passing drill (absent for a path that never passed).",
        labels=["path", "service"],
    )
    stale = GaugeMetricFamily(
        "breakglass_drill_path_stale",
        f"1 when the path has no passing drill in the last {STALE_DAYS} days (or ever).",
        labels=["path", "service"],
    )
    for path in paths:
        labels = [path.slug, path.service.slug]
        for result in (DrillRun.State.PASSED, DrillRun.State.FAILED):
            runs.add_metric([*labels, result], results.get((path.pk, result), 0))
        age = _age(now, last_pass.get(path.pk))
        if age is not None:
            since_pass.add_metric(labels, age)
        stale.add_metric(labels, 1 if age is None or age > STALE_DAYS * 86400 else 0)
    yield runs
    yield since_pass
    yield stale


def _bundle_metrics(now: datetime) -> Iterator[Metric]:
    from breakglass.keys.models import TrustBundle

    bundle = TrustBundle.objects.order_by("-version").first()
    if bundle is None:
        # No bundle at all: no series, so "absent()" alerts fire and nothing reads as healthy.
        return
    yield GaugeMetricFamily(
        "breakglass_trust_bundle_version", "Version of the latest trust bundle.", bundle.version
    )
    yield GaugeMetricFamily(
        "breakglass_trust_bundle_age_seconds",
        "Time since the latest trust bundle was issued.",
        value=_age(now, bundle.issued_at) or 0.0,
    )
    yield GaugeMetricFamily(
        "breakglass_trust_bundle_expiry_seconds",
        "Time until the latest trust bundle expires (negative once it has: verifiers refuse it).",
        value=(bundle.expires_at - now).total_seconds(),
    )


def _incident_metrics(now: datetime) -> Iterator[Metric]:
    from comms.models import Audience, Incident, IncidentState, StatusUpdate

    first_update = (
        StatusUpdate.objects.filter(
            audience=Audience.EXTERNAL, status=StatusUpdate.Status.PUBLISHED
        )
        .values("incident_id")
        .annotate(first=Min("published_at"))
        .order_by()
    )
    first_by_incident = {row["incident_id"]: row["first"] for row in first_update}
    open_incidents = list(
        Incident.objects.filter(drill=False).exclude(state=IncidentState.RESOLVED)
    )
    ttfu = GaugeMetricFamily(
        "breakglass_incident_first_external_update_seconds",
        "Time from declaring an open incident to its first published external update.",
        labels=["incident", "severity"],
    )
    waiting = GaugeMetricFamily(
        "breakglass_incident_awaiting_first_external_update_seconds",
        "How long an open incident has gone without any published external update.",
        labels=["incident", "severity"],
    )
    for incident in open_incidents:
        labels = [incident.reference, f"SEV{incident.severity}"]
        first = first_by_incident.get(incident.pk)
        if first is None:
            waiting.add_metric(labels, _age(now, incident.declared_at) or 0.0)
        else:
            ttfu.add_metric(labels, max(0.0, (first - incident.declared_at).total_seconds()))
    yield ttfu
    yield waiting
    # The latest incident that got an external update, open or not: a single series that
    # keeps its value between incidents, for a "how fast did we tell people" panel.
    latest = (
        Incident.objects.filter(drill=False, pk__in=list(first_by_incident))
        .order_by("-declared_at", "-id")
        .first()
    )
    if latest is not None:
        yield GaugeMetricFamily(
            "breakglass_latest_incident_first_external_update_seconds",
            "Time to first external update of the most recently declared public incident.",
            value=max(0.0, (first_by_incident[latest.pk] - latest.declared_at).total_seconds()),
        )


class BreakglassCollector:
    """Reads every figure from the database when Prometheus scrapes."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        yield from _grant_metrics(now)
        yield from _outbox_metrics(now)
        yield from _drill_metrics(now)
        yield from _bundle_metrics(now)
        yield from _incident_metrics(now)


def metrics_registry() -> CollectorRegistry:
    # A registry of our own: the default one also exports this process's Python and GC
    # figures, which differ per worker and say nothing about break-glass readiness.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BreakglassCollector())
    return registry


def metrics_text() -> bytes:
    return generate_latest(metrics_registry())


def _bearer_ok(request) -> bool:
    expected = settings.BREAKGLASS_METRICS_TOKEN
    if not expected:
        return False
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


@public
@never_cache
def metrics(request):
    """The scrape endpoint. Prometheus: `authorization: {credentials_file: ...}`."""
    if not settings.BREAKGLASS_METRICS_TOKEN:
        return HttpResponse(
            "metrics are off: set BREAKGLASS_METRICS_TOKEN (or use manage.py serve_metrics)\n",
            status=403,
            content_type="text/plain",
        )
    if not _bearer_ok(request):
        response = HttpResponse(
            "a valid bearer token is required\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE)
