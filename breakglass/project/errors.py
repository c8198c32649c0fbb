"""The one domain error type, and its two mappings to responses (console and JSON API).

Every app's refusals are a `DomainError`: a message a person can act on, a stable `code`
for automation and the HTTP `status` that fits (400 bad input, 403 not allowed, 404, 409
wrong state, 503 a part is not ready). Apps subclass it (`GrantError`, `DrillError`,
`CommsError`, `BundleImportError`, ...); nothing else about refusals differs between apps.

- Console: `DomainErrorMiddleware` turns one that escapes a view into the error page
  with its status and message (views that show errors inside a form catch them first);
  Django's own `PermissionDenied` gets the same treatment, as a 403.
- API: `domain_error_response` is the JSON body `{"error": {"code", "message"}}`.
Neither logs a traceback: an expected refusal is not a server error.

An unreachable database is not a bug either: `server_error` (the 500 handler) answers it
with 503, a page that says so and points to the offline kit (JSON under /api/), and one
log line naming what failed.
"""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.utils.log import log_response
from django.views import defaults

from breakglass.project.transient import DatabaseUnavailable, database_problem, transient_kind

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A refused operation. `str()` and `.message` are for a person; `.code` for the API."""

    code = "refused"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        # Not super(): subclasses that also derive from Django's ValidationError
        # (CommsError) initialise that side themselves.
        Exception.__init__(self, message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return self.message


def domain_error_response(exc: DomainError) -> JsonResponse:
    """The API's answer to a refusal."""
    return JsonResponse({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)


class DomainErrorMiddleware:
    """The console's answer to a refusal no view caught: the error page for its status,
    showing the message, with one line in the log and no traceback. A `PermissionDenied`
    (a page this person's role does not open) is a refusal too: Django would log it with
    its traceback, as if the server had failed."""

    TEMPLATES = {403: "403.html", 404: "404.html"}  # anything else: refused.html

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, PermissionDenied):
            code, status, message = "not_allowed", 403, str(exception)
        elif isinstance(exception, DomainError):
            code, status, message = exception.code, exception.status, exception.message
        else:
            return None
        template = self.TEMPLATES.get(status, "refused.html")
        response = render(request, template, {"exception": message}, status=status)
        # This line is the refusal's only one: log_response marks the response as logged,
        # so Django's handler does not add its own "Forbidden: ..." warning.
        log_response(
            "refused %s %s: %s (%s)",
            request.method,
            request.path,
            code,
            message,
            response=response,
            request=request,
            logger=log,
            level="info",
        )
        return response


def database_unreachable(exc: BaseException | None) -> bool:
    """The database is down or the connection to it was lost (not a bug in a query)."""
    return isinstance(exc, DatabaseUnavailable) or transient_kind(exc) == "connection"


def server_error(request):
    """Django's 500 handler (`handler500`). An unreachable database gets 503 and says so:
    the console page names the fallback (the offline kit and its runbook), the API
    answers `database_unavailable`; either way one log line, with no traceback (log_response
    marks the response as logged, so Django does not log it again). Every other error is
    Django's own 500 page, logged with its traceback as a bug should be.

    It runs while the exception is being handled, and renders without the request's
    context: the session and the user both live in the database."""
    exc = sys.exc_info()[1]
    if not database_unreachable(exc):
        return defaults.server_error(request)
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {
                "error": {
                    "code": "database_unavailable",
                    "message": "The database is unreachable; nothing was changed. "
                    "Try again shortly.",
                }
            },
            status=503,
        )
    else:
        body = loader.render_to_string(
            "database_unreachable.html",
            {"runbook_url": settings.BREAKGLASS_OFFLINE_RUNBOOK_URL},
        )
        response = HttpResponse(body, status=503)
    response["Retry-After"] = "30"
    log_response(
        "%s %s -> 503: %s",
        request.method,
        request.path,
        database_problem(exc) if not isinstance(exc, DatabaseUnavailable) else str(exc),
        response=response,
        request=request,
        logger=log,
        level="error",
    )
    return response
