"""The incident console: list, declare, and the incident room. Thin: forms in, services
do the work, ValidationError becomes a message on the page."""

from __future__ import annotations

import csv
import functools

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from breakglass.accounts import roles
from comms import incidents, selectors, updates, webhooks
from comms.egress import url_redacted
from comms.errors import CommsError
from comms.forms import (
    DeclareForm,
    DraftForm,
    ImpactForm,
    NoteForm,
    PostmortemForm,
    PublishForm,
    ReviewForm,
    RoleForm,
    StateForm,
    WebhookForm,
)
from comms.models import Audience, Incident, StatusUpdate, Subscriber, UpdateTemplate, Webhook


def responder_view(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not incidents.comms_can_act(request.user):
            raise PermissionDenied("Only responders, commanders and communications leads.")
        return view(request, *args, **kwargs)

    return wrapper


def _errors(request, exc: ValidationError) -> None:
    for message in exc.messages:
        messages.error(request, message)


@responder_view
def incident_list(request):
    return render(
        request,
        "comms/incident_list.html",
        {"incidents": selectors.incidents_for_console()[:200]},
    )


@responder_view
def incident_declare(request):
    form = DeclareForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            incident = incidents.incident_declare(
                title=data["title"],
                severity=data["severity"],
                actor=request.user,
                services=[(s, data["impact"]) for s in data["services"]],
                commander=data["commander"],
                comms_lead=data["comms_lead"],
                drill=data["drill"],
            )
        except ValidationError as exc:
            _errors(request, exc)
        else:
            messages.success(request, f"{incident.reference} declared.")
            return redirect("comms:incident", reference=incident.reference)
    return render(request, "comms/declare.html", {"form": form})


def _room_context(request, incident: Incident, **extra) -> dict:
    updates = list(incident.updates.select_related("author", "reviewer", "publisher"))
    for update in updates:
        update.reviewable_by_me = update.review_problem(reviewer=request.user) is None
        update.deliveries = (
            selectors.update_deliveries(update=update)
            if update.status == StatusUpdate.Status.PUBLISHED
            else None
        )
    role_form = RoleForm(initial={"role": "comms_lead", "user": incident.comms_lead_id})
    draft_form = extra.pop("draft_form", None) or DraftForm(initial=_draft_initial(incident))
    return {
        "incident": incident,
        "draft_first": _writes_the_updates(request.user, incident),
        "timeline": selectors.incident_timeline(incident=incident),
        "updates": updates,
        "cadence": selectors.incident_cadence(incident=incident),
        "role_form": role_form,
        "state_form": StateForm(initial={"state": incident.state}),
        "impact_form": ImpactForm(),
        "note_form": NoteForm(),
        "postmortem_form": PostmortemForm(initial={"url": incident.postmortem_url}),
        "draft_form": draft_form,
        "affected": incident.affected.select_related("service"),
        **extra,
    }


def _writes_the_updates(user, incident: Incident) -> bool:
    """The incident's communications lead (or, while it has none, anyone holding that
    role): the room puts the draft form first for them."""
    if incident.comms_lead_id is not None:
        return incident.comms_lead_id == user.pk
    return roles.user_has_role(user, roles.COMMS_LEAD)


def _draft_initial(incident: Incident) -> dict:
    # The external template for the incident's state, ready to preview or save as is.
    template = UpdateTemplate.objects.filter(
        state=incident.state, audience=Audience.EXTERNAL
    ).first()
    return {"state": incident.state, "audience": Audience.EXTERNAL, "template": template}


@responder_view
def incident_room(request, reference):
    incident = get_object_or_404(Incident, reference=reference)
    return render(request, "comms/incident_room.html", _room_context(request, incident))


def _incident_post(handler):
    @responder_view
    @require_POST
    @functools.wraps(handler)
    def wrapper(request, reference):
        incident = get_object_or_404(Incident, reference=reference)
        try:
            handler(request, incident)
        except ValidationError as exc:
            _errors(request, exc)
        return redirect("comms:incident", reference=incident.reference)

    return wrapper


@_incident_post
def incident_roles(request, incident):
    form = RoleForm(request.POST)
    if not form.is_valid():
        raise CommsError("Choose a role and a person.")
    incidents.incident_role_assign(
        incident=incident,
        role=form.cleaned_data["role"],
        user=form.cleaned_data["user"],
        actor=request.user,
    )
    messages.success(request, "Role updated.")


@_incident_post
def incident_state(request, incident):
    form = StateForm(request.POST)
    if not form.is_valid():
        raise CommsError("Choose a state.")
    incidents.incident_state_change(
        incident=incident, state=form.cleaned_data["state"], actor=request.user
    )


@_incident_post
def incident_impact(request, incident):
    form = ImpactForm(request.POST)
    if not form.is_valid():
        raise CommsError("Choose a service and an impact.")
    incidents.incident_impact_set(
        incident=incident,
        service=form.cleaned_data["service"],
        impact=form.cleaned_data["impact"],
        actor=request.user,
    )


@_incident_post
def incident_postmortem(request, incident):
    form = PostmortemForm(request.POST)
    if not form.is_valid():
        raise CommsError("A postmortem link must be an http(s) URL.")
    incidents.incident_postmortem_link(
        incident=incident, url=form.cleaned_data["url"], actor=request.user
    )


@_incident_post
def incident_note(request, incident):
    form = NoteForm(request.POST)
    if not form.is_valid():
        raise CommsError("A note cannot be empty.")
    incidents.incident_note_add(
        incident=incident, body=form.cleaned_data["body"], actor=request.user
    )


@responder_view
def update_draft(request, reference):
    """GET ?template=N loads a template; POST with action=preview renders without saving."""
    incident = get_object_or_404(Incident, reference=reference)
    preview = None
    if request.method == "POST":
        form = DraftForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            body = data["body"] or (data["template"].body if data["template"] else "")
            action = request.POST.get("action", "preview")
            try:
                if action == "load" and data["template"]:
                    form = DraftForm(initial={**data, "body": data["template"].body})
                elif action == "save":
                    update = updates.status_update_draft(
                        incident=incident,
                        audience=data["audience"],
                        body=body,
                        state=data["state"],
                        next_update_at=data["next_update_at"],
                        actor=request.user,
                    )
                    messages.success(request, f"Update #{update.pk} drafted.")
                    return redirect("comms:incident", reference=incident.reference)
                else:
                    preview = updates.status_update_render(
                        incident=incident,
                        body=body,
                        state=data["state"],
                        next_update_at=data["next_update_at"] or _default_next(incident),
                    )
                    if data["template"] and not data["body"]:
                        form = DraftForm(initial={**data, "body": body})
            except ValidationError as exc:
                form.add_error(None, exc)
    else:
        form = DraftForm(initial=_draft_initial(incident))
    context = _room_context(request, incident, draft_form=form, preview=preview)
    return render(request, "comms/incident_room.html", context)


def _default_next(incident):
    from datetime import timedelta

    from django.utils import timezone

    return timezone.now() + timedelta(minutes=incident.cadence_minutes)


def _update_post(handler):
    @responder_view
    @require_POST
    @functools.wraps(handler)
    def wrapper(request, pk):
        update = get_object_or_404(StatusUpdate.objects.select_related("incident"), pk=pk)
        try:
            handler(request, update)
        except ValidationError as exc:
            _errors(request, exc)
        return redirect("comms:incident", reference=update.incident.reference)

    return wrapper


@_update_post
def update_review(request, update):
    form = ReviewForm(request.POST)
    if not form.is_valid():
        raise CommsError("Approve or send back.")
    updates.status_update_review(
        update=update,
        reviewer=request.user,
        approve=form.cleaned_data["decision"] == "approve",
        notes=form.cleaned_data["notes"],
    )
    messages.success(request, "Review recorded.")


@_update_post
def update_publish(request, update):
    form = PublishForm(request.POST)
    form.is_valid()
    updates.status_update_publish(
        update=update,
        actor=request.user,
        override=form.cleaned_data.get("override", False),
        reason=form.cleaned_data.get("reason", ""),
    )
    messages.success(request, f"Update #{update.pk} published; delivery has started.")


@_update_post
def update_resend(request, update):
    count = updates.status_update_resend_failed(update=update, actor=request.user)
    messages.success(request, f"Re-queued {count} failed deliveries (delivered ones untouched).")


@responder_view
def subscriber_list(request):
    subscribers = Subscriber.objects.prefetch_related("services")
    return render(
        request,
        "comms/subscribers.html",
        {
            "subscribers": subscribers[:500],
            "total": subscribers.count(),
            "active": subscribers.active().count(),
        },
    )


class _FormulaSafeWriter:
    """A csv writer whose cells cannot become spreadsheet formulas. Subscriber addresses
    are typed by anonymous people (`=HYPERLINK(...)@x.test` is a valid address), and the
    export is opened by staff in Excel or LibreOffice: a leading =, +, -, @, tab or CR
    gets a quote prefix (the OWASP CSV-injection advice)."""

    DANGEROUS = ("=", "+", "-", "@", "\t", "\r")

    def __init__(self, writer):
        self._writer = writer

    def writerow(self, row):
        self._writer.writerow(
            [f"'{cell}" if str(cell).startswith(self.DANGEROUS) else cell for cell in row]
        )


@responder_view
def subscriber_export(request):
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="subscribers.csv"'
    writer = _FormulaSafeWriter(csv.writer(response))
    writer.writerow(["email", "status", "drill", "services", "created_at", "confirmed_at"])
    for sub in Subscriber.objects.prefetch_related("services").iterator(chunk_size=2000):
        writer.writerow(
            [
                sub.email,
                sub.status,
                "yes" if sub.drill else "no",
                " ".join(s.slug for s in sub.services.all()) or "all",
                sub.created_at.isoformat(),
                sub.confirmed_at.isoformat() if sub.confirmed_at else "",
            ]
        )
    return response


@responder_view
def webhook_list(request):
    manager = selectors.user_can_manage_webhooks(request.user)
    form = WebhookForm(request.POST or None)
    if request.method == "POST":
        if not manager:
            raise PermissionDenied("Only communications leads and administrators manage webhooks.")
        if "enable" in request.POST:
            hook = get_object_or_404(Webhook, pk=request.POST["enable"])
            webhooks.webhook_enable(webhook=hook, actor=request.user)
            messages.success(request, f"{hook.name} re-enabled.")
            return redirect("comms:webhooks")
        if form.is_valid():
            data = form.cleaned_data
            try:
                hook = webhooks.webhook_create(
                    name=data["name"],
                    url=data["url"],
                    format=data["format"],
                    drill=data["drill"],
                    owner=request.user,
                )
            except ValidationError as exc:
                form.add_error("url" if "URL" in str(exc) or "platform" in str(exc) else None, exc)
            else:
                messages.success(
                    request, f"Webhook {hook.name} created. Its signing secret: {hook.secret}"
                )
                return redirect("comms:webhooks")
    hooks = [
        (hook, hook.url if manager else url_redacted(hook.url)) for hook in Webhook.objects.all()
    ]
    return render(
        request, "comms/webhooks.html", {"form": form, "webhooks": hooks, "manager": manager}
    )
