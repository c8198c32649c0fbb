"""The one domain error type, and its two mappings to responses (console and JSON API).

Every app's refusals are a `DomainError`: a message a person can act on, a stable `code`
for automation and the HTTP `status` that fits (400 bad input, 403 not allowed, 404, 409
wrong state, 503 a part is not ready). Apps subclass it (`GrantError`, `DrillError`,
`CommsError`, `BundleImportError`, ...); nothing else about refusals differs between apps.

- Console: `DomainErrorMiddleware` turns one that escapes a view into the error page
  with its status and message (views that show errors inside a form catch them first).
- API: `domain_error_response` is the JSON body `{"error": {"code", "message"}}`.
Neither logs a traceback: an expected refusal is not a server error.
"""

from __future__ import annotations

import logging

from django.http import JsonResponse
from django.shortcuts import render

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
    showing the message, with no traceback in the logs."""

    TEMPLATES = {403: "403.html", 404: "404.html"}  # anything else: refused.html

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, DomainError):
            return None
        log.info("refused %s %s: %s (%s)", request.method, request.path, exception.code, exception)
        template = self.TEMPLATES.get(exception.status, "refused.html")
        return render(request, template, {"exception": exception.message}, status=exception.status)
