"""The access console: registry, requests, approvals, break-glass, grants and reviews.

Views only shape input and output; every rule lives in `breakglass.access.services`, so the
console, the JSON API and the commands refuse exactly the same things.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from breakglass.access import selectors
from breakglass.access.api_tokens import api_token_create, api_token_revoke
from breakglass.access.credentials import grant_credential
from breakglass.access.errors import GrantError
from breakglass.access.forms import (
    ApiTokenForm,
    BreakGlassForm,
    GrantRequestForm,
    PolicyChangeForm,
    ReasonForm,
    ReviewForm,
)
from breakglass.access.grants import grant_approve, grant_request, grant_self_issue
from breakglass.access.lifecycle import grant_review_close, grant_revoke
from breakglass.access.models import ApiToken, Grant, PolicyChange
from breakglass.access.policy import path_policy_approve, path_policy_propose, path_policy_reject
from breakglass.accounts.decorators import SUDO_CODE_FIELD, sudo_is_fresh, sudo_required
from breakglass.accounts.selectors import passkey_required
from breakglass.accounts.views import safe_next


def _path_or_404(slug: str):
    path = selectors.path_get(slug=slug)
    if path is None:
        raise Http404("Unknown path")
    return path


def grant_url(grant: Grant) -> str:
    return reverse("access:grant", args=[grant.pk])


def _grant_or_404(request, pk: int) -> Grant:
    grant = selectors.grant_get(pk=pk)
    if grant is None or not selectors.grant_actions_for(user=request.user, grant=grant).see:
        raise Http404("No such grant")
    return grant


def registry(request):
    chains = dict(
        (path.pk, chain) for path, chain in selectors.paths_with_chains() if chain is not None
    )
    siblings = selectors.paths_weaker_siblings()
    services_list = list(selectors.registry_services())
    for service in services_list:
        for path in service.backup_paths.all():
            path.chain = chains.get(path.pk)
            path.undercut_by = [str(f) for f in siblings if f.stronger == path.slug]
    return render(
        request,
        "access/registry.html",
        {
            "services": services_list,
            "flawed_count": len(chains),
            "weaker_sibling_count": len(siblings),
            "can_request": set(
                selectors.paths_requestable_by(user=request.user).values_list("pk", flat=True)
            ),
        },
    )


def path_card_view(request, slug: str):
    """The printable card for one path: the sheet taped inside the glass."""
    path = _path_or_404(slug)
    return render(
        request,
        "access/card.html",
        {**selectors.path_card(path=path), "printed_at": timezone.now()},
    )


def _request_kwargs(form, path) -> dict:
    data = form.cleaned_data
    return {
        "path": path,
        "reason": data.get("reason", ""),
        "scopes": data.get("scopes") or None,
        "lifetime_minutes": data.get("lifetime_minutes") or None,
        "incident_ref": data.get("incident_ref", ""),
        "ssh_public_key": data.get("ssh_public_key", ""),
    }


@never_cache
def grant_request_view(request, slug: str):
    path = _path_or_404(slug)
    form = GrantRequestForm(request.POST or None, path=path)
    if request.method == "POST" and form.is_valid():
        try:
            grant = grant_request(requester=request.user, **_request_kwargs(form, path))
        except GrantError as exc:
            form.add_problems(exc)
        else:
            needed = path.approvals_required
            messages.success(
                request,
                f"Request sent. It needs {needed} approval{pluralize(needed)}; the token will "
                "appear on this page once it is issued.",
            )
            return redirect("access:grant", pk=grant.pk)
    return render(
        request,
        "access/request.html",
        {"path": path, "form": form, "chain": selectors.path_dependency_chain(path=path)},
    )


@never_cache
@sudo_required
@sensitive_post_parameters("ssh_public_key")
def break_glass_view(request, slug: str):
    path = _path_or_404(slug)
    form = BreakGlassForm(request.POST or None, path=path)
    if request.method == "POST" and form.is_valid():
        try:
            grant, _credential = grant_self_issue(
                requester=request.user,
                confirmation=form.cleaned_data.get("confirmation", ""),
                **_request_kwargs(form, path),
            )
        except GrantError as exc:
            form.add_problems(exc)
        else:
            messages.warning(
                request,
                "Glass broken. Your credential is below. Every approver of this path and the "
                "security contacts have been notified, and a post-use review is now required.",
            )
            return redirect("access:grant", pk=grant.pk)
    return render(
        request,
        "access/break_glass.html",
        {
            "path": path,
            "form": form,
            "blocking": selectors.grant_review_blocking(path=path, user=request.user),
        },
    )


# How often a requester's page looks again for the credential while approvals come in.
PENDING_REFRESH_SECONDS = 10


def _refresh_seconds(request, grant: Grant) -> int | None:
    """The requester's page of a pending request reloads itself until the credential is
    there, with a <meta http-equiv="refresh">: no script (the CSP allows none inline),
    and it works with JavaScript off. It stops once the request is no longer pending,
    and while they are writing why they withdraw it (`?withdraw`), so a reload never
    throws away what they typed."""
    if (
        grant.state == Grant.State.PENDING
        and grant.requester_id == request.user.pk
        and grant.request_expires_at > timezone.now()
        and "withdraw" not in request.GET
    ):
        return PENDING_REFRESH_SECONDS
    return None


@never_cache
def grant_detail(request, pk: int):
    grant = _grant_or_404(request, pk)
    credential = grant_credential(grant=grant, user=request.user)
    ssh = None
    if credential and grant.is_ssh:
        ssh = {
            **selectors.ssh_certificate_facts(credential=credential),
            "command": selectors.ssh_login_command(
                path=grant.path, public_key=grant.ssh_public_key
            ),
            "certificate_file": f"~/.ssh/{grant.path.slug}-cert.pub",
        }
    return render(
        request,
        "access/grant.html",
        {
            "grant": grant,
            "refresh_seconds": _refresh_seconds(request, grant),
            "credential": credential,
            "ssh": ssh,
            "actions": selectors.grant_actions_for(user=request.user, grant=grant),
            "revoke_form": ReasonForm(),
            "review_form": ReviewForm(),
        },
    )


@never_cache
@sensitive_post_parameters(SUDO_CODE_FIELD)
@sudo_required
def grant_approve_view(request, pk: int):
    """A page of its own, so the approver sees who asked, why and for which incident
    right next to the button, after a fresh OTP. The approvals queue posts here too, with
    the fresh code beside the button when one is needed, and is sent back (`next`)."""
    grant = _grant_or_404(request, pk)
    if request.method == "POST":
        try:
            grant = grant_approve(grant=grant, approver=request.user)
        except GrantError as exc:
            messages.error(request, exc.message)
        else:
            if grant.state == Grant.State.ISSUED:
                messages.success(
                    request, "Approved. That was the last approval: the credential is issued."
                )
            else:
                remaining = grant.path.approvals_required - grant.approvals.count()
                messages.success(
                    request, f"Approved. {remaining} more approval{pluralize(remaining)} needed."
                )
        return redirect(safe_next(request, grant_url(grant)))
    return render(
        request,
        "access/approve.html",
        {
            "grant": grant,
            "cannot_approve": selectors.grant_approve_problem(grant=grant, user=request.user),
        },
    )


@require_POST
def grant_revoke_view(request, pk: int):
    """Revoke an issued grant; on a pending request the same service withdraws it (its
    requester) or declines it (an approver, from the approvals queue, which is `next`)."""
    grant = _grant_or_404(request, pk)
    was_pending = grant.state == Grant.State.PENDING
    declined = was_pending and grant.requester_id != request.user.pk
    form = ReasonForm(request.POST)
    form.is_valid()
    try:
        grant_revoke(grant=grant, actor=request.user, reason=form.cleaned_data.get("reason", ""))
    except GrantError as exc:
        messages.error(request, exc.message)
    else:
        if declined:
            messages.success(
                request, f"Declined. {grant.requester.username} sees your reason on the request."
            )
        elif was_pending:
            messages.success(request, "Withdrawn. Approvers no longer see this request.")
        else:
            messages.success(
                request, "Revoked. The next trust bundle lists this credential as revoked."
            )
    return redirect(safe_next(request, grant_url(grant)))


@require_POST
def grant_review_view(request, pk: int):
    grant = _grant_or_404(request, pk)
    form = ReviewForm(request.POST)
    form.is_valid()
    try:
        grant_review_close(
            grant=grant, reviewer=request.user, notes=form.cleaned_data.get("notes", "")
        )
    except GrantError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Review closed.")
    return redirect("access:grant", pk=grant.pk)


@never_cache
def my_grants(request):
    grants = list(selectors.grants_of(user=request.user)[:50])
    for grant in grants:
        grant.credential = grant_credential(grant=grant, user=request.user)
    return render(request, "access/mine.html", {"grants": grants})


@never_cache
def approvals_queue(request):
    """Everything waiting for this person's approval, each with who, which path, why, the
    incident, how long it has waited, and Approve / Decline right there. Approving needs
    a fresh code: typed beside the button when the session has none (or, for roles that
    need a passkey, through the sudo page)."""
    return render(
        request,
        "access/approvals.html",
        {
            "grants": list(selectors.grants_awaiting_approval_by(user=request.user)),
            "sudo_fresh": sudo_is_fresh(request),
            "code_field": SUDO_CODE_FIELD,
            "passkey_required": passkey_required(user=request.user),
        },
    )


def active_board(request):
    return render(request, "access/active.html", {"grants": selectors.grants_active()})


def review_queue(request):
    return render(request, "access/reviews.html", {"grants": selectors.grants_review_queue()})


@never_cache
@sudo_required
def api_tokens(request):
    new_token = None
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST":
        if "revoke" in request.POST:
            token = ApiToken.objects.filter(
                pk=request.POST.get("revoke"), user=request.user
            ).first()
            if token is not None:
                api_token_revoke(token=token, actor=request.user)
                messages.success(request, f"Token {token.name} revoked.")
            return redirect("access:api_tokens")
        if form.is_valid():
            try:
                _token, new_token = api_token_create(
                    user=request.user,
                    name=form.cleaned_data.get("name", ""),
                    scopes=form.cleaned_data["scopes"],
                    lifetime=form.lifetime_delta(),
                    fresh_otp=sudo_is_fresh(request),  # this view is @sudo_required
                )
            except GrantError as exc:
                form.add_error("name" if exc.code == "missing_name" else None, exc.message)
    return render(
        request,
        "access/api_tokens.html",
        {
            "form": form,
            "tokens": selectors.api_tokens_of(user=request.user),
            "new_token": new_token,
        },
    )


# --- Path policy: the two-person rule (breakglass/access/policy.py) ----------------------


def _administrator_only(request) -> None:
    if not selectors.path_policy_change_allowed(user=request.user):
        raise PermissionDenied("Path policy is changed by administrators.")


@never_cache
@sudo_required
def policy_changes(request):
    """Pending and recent policy changes, and the form to propose one."""
    _administrator_only(request)
    form = PolicyChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            change = path_policy_propose(
                path=form.cleaned_data["path"],
                changes=form.changes(),
                reason=form.cleaned_data["reason"],
                actor=request.user,
            )
        except GrantError as exc:
            form.add_error(None, exc.message)
        else:
            if change.state == PolicyChange.State.APPLIED:
                messages.success(request, f"Applied to {change.path.slug}: it weakens nothing.")
            else:
                messages.warning(
                    request,
                    f"Proposed: it weakens {change.path.slug} ({'; '.join(change.weakens)}), "
                    "so another administrator must approve it with a fresh OTP.",
                )
            return redirect("access:policy")
    return render(
        request,
        "access/policy.html",
        {
            "form": form,
            "pending": selectors.policy_changes_pending(),
            "recent": selectors.policy_changes_recent(),
        },
    )


@never_cache
@sudo_required
def policy_change_approve_view(request, pk: int):
    """GET shows the change; POST approves it (a second administrator, fresh OTP)."""
    _administrator_only(request)
    change = get_object_or_404(PolicyChange.objects.select_related("path", "proposed_by"), pk=pk)
    if request.method == "POST":
        try:
            if "reject" in request.POST:
                path_policy_reject(
                    change=change, actor=request.user, note=request.POST.get("note", "")
                )
                messages.success(request, f"Change {change.pk} rejected.")
            else:
                path_policy_approve(change=change, actor=request.user)
                messages.success(request, f"Change {change.pk} approved and applied.")
        except GrantError as exc:
            messages.error(request, exc.message)
            return redirect("access:policy_approve", pk=change.pk)
        return redirect("access:policy")
    return render(
        request,
        "access/policy_approve.html",
        {"change": change, "own": change.proposed_by_id == request.user.pk},
    )
