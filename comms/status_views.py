"""The public status page, its Statuspage-compatible JSON API, the Atom feed, and the
subscriber links. All public: they are read by people and widgets without accounts."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.csrf import csrf_exempt

from breakglass.accounts.decorators import public
from breakglass.accounts.ratelimit import client_address, ratelimit_hit, wait_message
from comms import export, statuspage, subscribers
from comms.forms import SubscribeForm


def _cors(response):
    # Status widgets on other origins read these documents, like Statuspage's own API.
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "public, max-age=30"
    return response


@public
def status_page(request):
    context = {
        **statuspage.page_context(),
        "static_copy": False,
        "css_href": static("comms/status.css"),
        "js_href": static("comms/stale.js"),
        "favicon_href": static(export.ASSETS["favicon.svg"]),
        "api_prefix": "/api/v2/",
        "feed_href": "/history.atom",
    }
    return render(request, "status/page.html", context)


def _document(name):
    @public
    def view(request):
        return _cors(
            JsonResponse(statuspage.all_documents()[name], json_dumps_params={"indent": 2})
        )

    view.__name__ = f"api_{name.replace('/', '_').replace('.', '_').replace('-', '_')}"
    return view


api_summary = _document("summary.json")
api_status = _document("status.json")
api_components = _document("components.json")
api_incidents = _document("incidents.json")
api_unresolved = _document("incidents/unresolved.json")
api_maintenances = _document("scheduled-maintenances.json")
api_maintenances_upcoming = _document("scheduled-maintenances/upcoming.json")
api_maintenances_active = _document("scheduled-maintenances/active.json")


@public
def history_atom(request):
    return _cors(
        HttpResponse(statuspage.atom_feed(), content_type="application/atom+xml; charset=utf-8")
    )


def _too_many(request, *, scope: str, key: str, limit: tuple[int, int]):
    """A 429 page when (scope, key) is over its limit, else None. Fails closed: these
    public links are not needed to get access (accounts/ratelimit.py)."""
    wait = ratelimit_hit(scope=scope, key=key, limit=limit, fail_open=False)
    if not wait:
        return None
    response = render(
        request,
        "status/message.html",
        {"heading": "Slow down", "text": wait_message(wait)},
        status=429,
    )
    response["Retry-After"] = str(wait)
    return response


@public
def subscribe(request):
    form = SubscribeForm(request.POST or None)
    if request.method == "POST":
        refused = _too_many(
            request,
            scope="subscribe-client",
            key=client_address(request),
            limit=settings.COMMS_RATELIMIT_SUBSCRIBE_CLIENT,
        )
        if refused:
            return refused
    if request.method == "POST" and form.is_valid():
        refused = _too_many(
            request,
            scope="subscribe-address",
            key=form.cleaned_data["email"],
            limit=settings.COMMS_RATELIMIT_SUBSCRIBE_ADDRESS,
        )
        if refused:
            return refused
        try:
            subscribers.subscriber_subscribe(
                email=form.cleaned_data["email"], services=form.cleaned_data["services"]
            )
        except ValidationError as exc:
            form.add_error("email", exc)
        else:
            return render(
                request,
                "status/message.html",
                {
                    "heading": "Check your inbox",
                    "text": "We sent a confirmation link. Nothing more is sent until you click it.",
                },
            )
    return render(
        request, "status/subscribe.html", {"form": form, "css_href": static("comms/status.css")}
    )


@public
def subscribe_confirm(request, token):
    if request.method == "POST":
        for scope, key, limit in (
            ("confirm-client", client_address(request), settings.COMMS_RATELIMIT_CONFIRM_CLIENT),
            ("confirm-link", token, settings.COMMS_RATELIMIT_CONFIRM_LINK),
        ):
            refused = _too_many(request, scope=scope, key=key, limit=limit)
            if refused:
                return refused
        try:
            subscribers.subscriber_confirm(token=token)
        except ValidationError as exc:
            return render(
                request,
                "status/message.html",
                {"heading": "Link not valid", "text": exc.messages[0]},
                status=404,
            )
        return render(
            request,
            "status/message.html",
            {"heading": "Subscribed", "text": "You will receive incident updates by e-mail."},
        )
    # GET only shows a button: mail scanners that prefetch links must not confirm.
    return render(
        request, "status/confirm.html", {"action": "Confirm subscription", "token": token}
    )


@public
@csrf_exempt  # RFC 8058 one-click: the mail provider POSTs without our CSRF cookie.
def unsubscribe(request, token):
    if request.method == "POST":
        try:
            subscribers.subscriber_unsubscribe(token=token)
        except ValidationError as exc:
            return render(
                request,
                "status/message.html",
                {"heading": "Link not valid", "text": exc.messages[0]},
                status=404,
            )
        return render(
            request,
            "status/message.html",
            {"heading": "Unsubscribed", "text": "You will not receive any more updates."},
        )
    return render(request, "status/confirm.html", {"action": "Unsubscribe", "token": token})
