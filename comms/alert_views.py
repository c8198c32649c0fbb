"""Inbound alert webhooks. Public routes (the senders have no session) that authenticate
every delivery before reading it; the rules live in comms.alerts."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, ValidationError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from breakglass.accounts.decorators import public
from comms import alerts
from comms.models import InboundAlert

log = logging.getLogger(__name__)


def _refuse(request, *, source: str, reason: str, status: int = 401) -> JsonResponse:
    alerts.alert_refusal_record(
        source=source, reason=reason, remote_addr=request.META.get("REMOTE_ADDR", "")
    )
    # One line, no traceback: a refusal is an expected event, not a server error.
    log.warning(
        "refused %s alert delivery from %s: %s", source, request.META.get("REMOTE_ADDR"), reason
    )
    response = JsonResponse({"error": reason}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="alerts"'
    return response


def _body(request) -> bytes | None:
    try:
        return request.body
    except RequestDataTooBig:
        return None


def _receive(parsed) -> JsonResponse:
    if parsed is None:
        return JsonResponse({"outcome": "ignored", "incident": None}, status=202)
    try:
        result = alerts.alert_receive(alert=parsed)
    except ValidationError as exc:
        return JsonResponse({"error": "; ".join(exc.messages)}, status=400)
    return JsonResponse(result.as_json(), status=201 if result.outcome == "opened" else 200)


def _token_matches(presented: str) -> bool:
    expected = settings.BREAKGLASS_ALERTMANAGER_TOKEN
    return bool(expected and presented) and hmac.compare_digest(
        presented.encode(), expected.encode()
    )


@public
@csrf_exempt
@require_POST
def alertmanager(request, token: str = ""):
    """Alertmanager webhook_config: bearer token in `Authorization`, or in the URL path."""
    source = InboundAlert.Source.ALERTMANAGER
    if not settings.BREAKGLASS_ALERTMANAGER_TOKEN:
        return JsonResponse(
            {"error": "Alertmanager intake is off: set BREAKGLASS_ALERTMANAGER_TOKEN"}, status=403
        )
    if not token:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            token = ""
    if not _token_matches(token.strip()):
        return _refuse(request, source=source, reason="missing or wrong bearer token")
    body = _body(request)
    if body is None:
        return JsonResponse({"error": "payload too large"}, status=413)
    try:
        parsed = alerts.alertmanager_parse(json.loads(body))
    except (ValueError, alerts.AlertPayloadError) as exc:
        return JsonResponse({"error": f"unreadable Alertmanager payload: {exc}"}, status=400)
    return _receive(parsed)


def _pagerduty_signature_ok(body: bytes, header: str) -> bool:
    presented = [
        part.strip().removeprefix("v1=")
        for part in header.split(",")
        if part.strip().startswith("v1=")
    ]
    ok = False
    for secret in settings.BREAKGLASS_PAGERDUTY_WEBHOOK_SECRETS:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        for candidate in presented:
            # Every pair is compared (no early exit), so timing says nothing about which.
            ok |= hmac.compare_digest(candidate.lower().encode(), expected.encode())
    return ok


@public
@csrf_exempt
@require_POST
def pagerduty(request):
    """PagerDuty v3 webhook subscription; `X-PagerDuty-Signature` over the raw body."""
    source = InboundAlert.Source.PAGERDUTY
    if not settings.BREAKGLASS_PAGERDUTY_WEBHOOK_SECRETS:
        return JsonResponse(
            {"error": "PagerDuty intake is off: set BREAKGLASS_PAGERDUTY_WEBHOOK_SECRETS"},
            status=403,
        )
    body = _body(request)
    if body is None:
        return _refuse(request, source=source, reason="payload too large to verify", status=413)
    if not _pagerduty_signature_ok(body, request.headers.get("X-PagerDuty-Signature", "")):
        return _refuse(request, source=source, reason="missing or wrong X-PagerDuty-Signature")
    try:
        parsed = alerts.pagerduty_parse(json.loads(body))
    except (ValueError, alerts.AlertPayloadError) as exc:
        return JsonResponse({"error": f"unreadable PagerDuty payload: {exc}"}, status=400)
    return _receive(parsed)
