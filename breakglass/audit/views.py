"""The audit console: who did what, whether the chain is intact, and a verifiable export.
Administrators and staff only: the log names every person and every grant."""

from __future__ import annotations

import functools

from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from breakglass.audit.selectors import (
    audit_chain_verify,
    audit_checkpoints_all,
    audit_events_recent,
    audit_export_lines,
    audit_read_allowed,
)
from breakglass.audit.services import audit_record


def _audit_reader_required(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not audit_read_allowed(user=request.user):
            raise PermissionDenied(
                "The audit log is for administrators, approvers, incident commanders and staff."
            )
        return view(request, *args, **kwargs)

    return wrapper


@never_cache
@_audit_reader_required
def audit_home(request):
    filters = {
        "action": request.GET.get("action", "").strip()[:100],
        "actor": request.GET.get("actor", "").strip()[:150],
        "obj": request.GET.get("object", "").strip()[:200],
    }
    checkpoints = audit_checkpoints_all()
    checkpoint = checkpoints[-1] if checkpoints else None
    context = {
        "events": audit_events_recent(**filters, limit=200),
        "filters": filters,
        "filtered": any(filters.values()),
        "status": audit_chain_verify(checkpoints=checkpoints),
        "checkpoint_seq": checkpoint[0] if checkpoint else None,
    }
    return render(request, "audit/home.html", context)


@never_cache
@_audit_reader_required
def audit_export(request):
    # Taking a copy of the whole log is itself worth recording.
    audit_record(action="audit.exported", actor=request.user)
    filename = f"breakglass-audit-{timezone.now():%Y%m%dT%H%M%SZ}.jsonl"
    response = StreamingHttpResponse(audit_export_lines(), content_type="application/jsonl")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
