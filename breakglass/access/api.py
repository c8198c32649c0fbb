"""The JSON API for automation. Authenticated by API tokens (stored hashed), not by
sessions, so it is CSRF-exempt and marked public for the session middleware; it then
calls exactly the same services as the console, so the same policy applies. Approving
and breaking the glass need the person's current OTP code in the body, the API's
equivalent of the console's fresh-OTP (sudo) step. Each endpoint names the token scope it
needs, and credentials appear in responses only under the rule in api_tokens.py.
"""

from __future__ import annotations

import functools
import json
import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import JsonResponse
from django.utils.log import log_response
from django.views.decorators.csrf import csrf_exempt

from breakglass.access import grants as grant_rules
from breakglass.access import lifecycle, selectors
from breakglass.access.api_tokens import (
    api_token_allows,
    api_token_authenticate,
    api_token_credential_refusal,
)
from breakglass.access.credentials import grant_credential, grant_credential_available
from breakglass.access.errors import GrantError
from breakglass.access.models import Grant
from breakglass.accounts.decorators import public
from breakglass.accounts.forms import OTPForm
from breakglass.accounts.ratelimit import client_address, ratelimit_hit, wait_message
from breakglass.audit.services import audit_record
from breakglass.project.errors import DomainError, domain_error_response
from breakglass.project.transient import DatabaseUnavailable, database_problem, transient_kind

log = logging.getLogger(__name__)


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def _database_error(request, exc: Exception) -> JsonResponse:
    """503 with a stable code for a database that is down or kept refusing the change
    (after the services' own retries): automation can retry on `Retry-After`."""
    if isinstance(exc, DatabaseUnavailable):
        code, message = "database_unavailable", str(exc)
    elif transient_kind(exc) in ("deadlock", "serialization"):
        code = "database_conflict"
        message = "The change conflicted with concurrent ones and was not saved; try again."
    else:
        code = "database_unavailable"
        message = "The database is unreachable; the change was not saved. Try again shortly."
    response = _error(503, code, message)
    response["Retry-After"] = "5"
    # One line (log_response marks the response logged: Django adds no second one).
    log_response(
        "api: %s %s -> 503 %s (%s)",
        request.method,
        request.path,
        code,
        database_problem(exc),
        response=response,
        request=request,
        logger=log,
        level="warning",
    )
    return response


class ApiJsonErrorsMiddleware:
    """Under /api/, every answer is JSON: an error page Django renders itself (an unknown
    URL, an unexpected crash, a database error outside the view) becomes
    {"error": {"code", "message"}} with the same status."""

    _codes = {404: "not_found", 405: "method_not_allowed", 500: "server_error"}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            code = self._codes.get(response.status_code, "error")
            return _error(response.status_code, code, f"{response.status_code}: {code}.")
        return response


def api_view(**scopes: str | tuple[str, ...]):
    """An API endpoint: `GET="read"` names each allowed method and the token scope it
    needs (a tuple: any one of them)."""

    def decorate(view):
        @public
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                return authenticated(request, *args, **kwargs)
            except (DatabaseError, DatabaseUnavailable) as exc:
                return _database_error(request, exc)

        def authenticated(request, *args, **kwargs):
            header = request.headers.get("Authorization", "")
            scheme, _, raw = header.partition(" ")
            token = None
            try:
                if scheme.lower() == "bearer":
                    token = api_token_authenticate(raw=raw.strip())
            except GrantError as exc:  # expired
                response = _error(exc.status, exc.code, exc.message)
                response["WWW-Authenticate"] = 'Bearer realm="breakglass", error="invalid_token"'
                return response
            if token is None:
                response = _error(
                    401, "unauthenticated", "Send a valid API token: Authorization: Bearer <token>."
                )
                response["WWW-Authenticate"] = 'Bearer realm="breakglass"'
                return response
            if request.method not in scopes:
                return _error(405, "method_not_allowed", f"Use {' or '.join(scopes)}.")
            needed = scopes[request.method]
            needed = (needed,) if isinstance(needed, str) else needed
            if not any(api_token_allows(token=token, scope=scope) for scope in needed):
                response = _error(
                    403,
                    "insufficient_scope",
                    f"This API token lacks the {' or '.join(needed)} scope for this endpoint.",
                )
                response["WWW-Authenticate"] = (
                    f'Bearer realm="breakglass", error="insufficient_scope", scope="{needed[0]}"'
                )
                return response
            body = {}
            if request.method == "POST":
                try:
                    body = json.loads(request.body or b"{}")
                except (ValueError, UnicodeDecodeError):
                    return _error(400, "bad_json", "The request body must be a JSON object.")
                if not isinstance(body, dict):
                    return _error(400, "bad_json", "The request body must be a JSON object.")
            request.user, request.api_token = token.user, token
            try:
                return view(request, body, *args, **kwargs)
            except DomainError as exc:  # any app's refusal, e.g. KeysNotReady (503)
                return domain_error_response(exc)

        return wrapper

    return decorate


def _require_otp(request, body: dict) -> None:
    user = request.user
    wait = ratelimit_hit(
        scope="otp",
        key=client_address(request),
        limit=settings.BREAKGLASS_RATELIMIT_OTP,
        fail_open=True,  # as in the console: a broken counter must not lock responders out
    )
    if wait:
        raise GrantError(wait_message(wait), code="rate_limited", status=429)
    form = OTPForm(user, {"otp_token": str(body.get("otp") or "")})
    if not form.is_valid():
        audit_record(action="api.otp_failed", actor=user)
        raise GrantError(
            'This action needs your current OTP code in the body as "otp". '
            + " ".join(form.errors.get("otp_token", [])),
            code="otp_required",
            status=403,
        )


def _text(body: dict, key: str) -> str:
    value = body.get(key, "")
    return value if isinstance(value, str) else ""


def _grant_json(grant: Grant, *, request) -> dict:
    user = request.user
    actions = selectors.grant_actions_for(user=user, grant=grant)
    data = {
        "id": grant.pk,
        "path": grant.path.slug,
        "service": grant.path.service.slug,
        "requester": grant.requester.get_username() if grant.requester else None,
        "reason": grant.reason,
        "incident_ref": grant.incident_ref or None,
        "scopes": grant.scopes,
        "lifetime_minutes": grant.lifetime_minutes,
        "state": grant.state,
        "emergency": grant.emergency,
        "drill": grant.drill,
        "jti": grant.jti,
        "approvals": [a.approver.get_username() for a in grant.approvals.all()],
        "approvals_required": grant.path.approvals_required,
        "created_at": grant.created_at.isoformat(),
        "request_expires_at": grant.request_expires_at.isoformat(),
        "issued_at": grant.issued_at.isoformat() if grant.issued_at else None,
        "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
        "review_required": grant.review_required,
        "reviewed_at": grant.reviewed_at.isoformat() if grant.reviewed_at else None,
        # What the caller may do with it now (the console's buttons; the same selector).
        "actions": {name: getattr(actions, name) for name in ("approve", "revoke", "review")},
    }
    if grant_credential_available(grant=grant, user=user):
        refusal = api_token_credential_refusal(token=request.api_token)
        if refusal:
            data["credential_withheld"] = refusal
        else:
            data["credential"] = grant_credential(grant=grant, user=user)
    return data


def _grant_for(request, pk: int) -> Grant:
    grant = selectors.grant_get(pk=pk)
    if grant is None or not selectors.grant_visible_to(grant=grant, user=request.user):
        raise GrantError(f"No grant {pk} that you can see.", code="not_found", status=404)
    return grant


def _request_fields(body: dict) -> dict:
    scopes = body.get("scopes")
    if scopes is not None and not (
        isinstance(scopes, list) and all(isinstance(s, str) for s in scopes)
    ):
        raise GrantError("scopes must be a list of strings.", code="bad_scopes")
    lifetime = body.get("lifetime_minutes")
    if lifetime is not None and (isinstance(lifetime, bool) or not isinstance(lifetime, int)):
        raise GrantError("lifetime_minutes must be a whole number.", code="bad_lifetime")
    return {
        "path": grant_rules.path_resolve(slug=_text(body, "path")),
        "reason": _text(body, "reason"),
        "scopes": scopes,
        "lifetime_minutes": lifetime,
        "incident_ref": _text(body, "incident_ref"),
        "ssh_public_key": _text(body, "ssh_public_key"),
    }


@api_view(GET="read", POST="request")
def grants(request, body):
    if request.method == "GET":
        mine = selectors.grants_of(user=request.user)[:100]
        return JsonResponse({"grants": [_grant_json(g, request=request) for g in mine]})
    grant = grant_rules.grant_request(requester=request.user, **_request_fields(body))
    return JsonResponse({"grant": _grant_json(grant, request=request)}, status=201)


@api_view(POST="request")
def grant_self_issue(request, body):
    fields = _request_fields(body)
    _require_otp(request, body)
    grant, _credential = grant_rules.grant_self_issue(
        requester=request.user, confirmation=_text(body, "confirmation"), **fields
    )
    grant = selectors.grant_get(pk=grant.pk)
    return JsonResponse({"grant": _grant_json(grant, request=request)}, status=201)


@api_view(GET="read")
def grant_detail(request, body, pk: int):
    return JsonResponse({"grant": _grant_json(_grant_for(request, pk), request=request)})


@api_view(POST="approve")
def grant_approve(request, body, pk: int):
    grant = selectors.grant_get(pk=pk)
    if grant is None:
        raise GrantError(f"No grant {pk}.", code="not_found", status=404)
    _require_otp(request, body)
    grant_rules.grant_approve(grant=grant, approver=request.user)
    return JsonResponse({"grant": _grant_json(selectors.grant_get(pk=pk), request=request)})


@api_view(POST=("request", "approve"))
def grant_revoke(request, body, pk: int):
    grant = _grant_for(request, pk)
    lifecycle.grant_revoke(grant=grant, actor=request.user, reason=_text(body, "reason"))
    return JsonResponse({"grant": _grant_json(selectors.grant_get(pk=pk), request=request)})


@api_view(GET="read")
def paths(request, body):
    siblings = selectors.paths_weaker_siblings()
    return JsonResponse(
        {
            "paths": [
                {
                    "slug": path.slug,
                    "service": path.service.slug,
                    "method": path.method,
                    "scopes": path.scopes,
                    "max_lifetime_minutes": path.max_lifetime_minutes,
                    "approvals_required": path.approvals_required,
                    "allow_self_issue": path.allow_self_issue,
                    "dependency_chain": chain,
                    "undercut_by": [
                        {"path": f.weaker, "authority": f.authority, "reason": f.reason}
                        for f in siblings
                        if f.stronger == path.slug
                    ],
                }
                for path, chain in selectors.paths_with_chains()
            ]
        }
    )
