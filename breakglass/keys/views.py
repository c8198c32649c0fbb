"""Public trust documents and the keys console page. No view ever loads a private key."""

from __future__ import annotations

import hashlib

from django.contrib import messages
from django.http import HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from breakglass.accounts.decorators import public, sudo_required
from breakglass.accounts.roles import ADMINISTRATOR, user_has_role
from breakglass.core.canonical import canonical_json
from breakglass.keys import selectors, services

# Verifiers poll; a short shared cache keeps load low while revocations still spread fast.
_CACHE_CONTROL = "public, max-age=60, must-revalidate"


def _json_with_etag(request, document: dict, etag: str) -> HttpResponse:
    quoted = f'"{etag}"'
    if request.headers.get("If-None-Match") == quoted:
        response = HttpResponse(status=304)
    else:
        response = JsonResponse(document, json_dumps_params={"indent": 2, "sort_keys": True})
    response["ETag"] = quoted
    response["Cache-Control"] = _CACHE_CONTROL
    response["Access-Control-Allow-Origin"] = "*"
    return response


@public
@require_GET
def bundle_json(request):
    latest = selectors.bundle_latest()
    if latest is None:
        return JsonResponse({"error": "no trust bundle has been published yet"}, status=404)
    return _json_with_etag(request, latest.document, f"v{latest.version}")


@public
@require_GET
def roots_json(request):
    try:
        roots = selectors.roots_export()
    except selectors.KeysNotReady as exc:
        return JsonResponse({"error": str(exc)}, status=404)
    digest = hashlib.sha256(canonical_json(roots)).hexdigest()[:32]
    return _json_with_etag(request, roots, f"roots-{digest}")


def _public_file(request, body: bytes, *, etag: str, content_type: str) -> HttpResponse:
    quoted = f'"{etag}"'
    if request.headers.get("If-None-Match") == quoted:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type=content_type)
    response["ETag"] = quoted
    response["Cache-Control"] = _CACHE_CONTROL
    response["Access-Control-Allow-Origin"] = "*"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@public
@require_GET
def ssh_ca_pub(request, path_slug: str):
    """The path's TrustedUserCAKeys file (public, like the bundle): its CA line and those of
    the sealed kits covering it, from the latest bundle (what `breakglass sync` installs)."""
    ca = selectors.ssh_ca_of_path(path_slug=path_slug)
    if ca is None:
        return HttpResponse(
            f"no SSH path {path_slug!r}\n", status=404, content_type="text/plain; charset=utf-8"
        )
    if ca.state not in (ca.State.ACTIVE, ca.State.RETIRING):
        return HttpResponse(
            f"the CA of {path_slug!r} is {ca.state}: trust nothing for this path until it "
            "has a new one\n",
            status=410,
            content_type="text/plain; charset=utf-8",
        )
    try:
        version, body = selectors.ssh_ca_published(path_slug=path_slug)
    except selectors.SshTrustUnavailable as exc:
        return HttpResponse(f"{exc}\n", status=404, content_type="text/plain; charset=utf-8")
    return _public_file(request, body, etag=f"ca-{path_slug}-v{version}", content_type="text/plain")


@public
@require_GET
def ssh_krl(request, path_slug: str):
    """The path's KRL for sshd's RevokedKeys, built from the latest signed bundle."""
    try:
        version, body = selectors.ssh_krl_published(path_slug=path_slug)
    except selectors.SshTrustUnavailable as exc:
        return HttpResponse(f"{exc}\n", status=404, content_type="text/plain; charset=utf-8")
    return _public_file(
        request, body, etag=f"krl-{path_slug}-v{version}", content_type="application/octet-stream"
    )


@require_GET
def keys_page(request):
    latest = selectors.bundle_latest()
    return render(
        request,
        "keys/keys.html",
        {
            "keys": selectors.keys_list(),
            "bundle": latest,
            "can_rotate": user_has_role(request.user, ADMINISTRATOR),
        },
    )


@require_POST
@sudo_required
def issuer_rotate(request):
    if not user_has_role(request.user, ADMINISTRATOR):
        return HttpResponseForbidden("Only administrators can rotate the issuer key.")
    try:
        key = services.issuer_key_rotate(actor=request.user)
    except (services.KeysNotReady, services.SecretError) as exc:
        messages.error(request, f"Rotation failed: {exc}")
    else:
        messages.success(request, f"New issuer key {key.kid} is now signing tokens.")
    return redirect("keys:keys")


# --- The sealed kit (docs/operations.md, "The kit") ---------------------------------------


@require_GET
def kits_page(request):
    from breakglass.keys.forms import KitCheckForm
    from breakglass.keys.selectors import kits_status

    return render(
        request,
        "keys/kits.html",
        {
            "kits": kits_status(),
            "check_form": KitCheckForm(),
            "can_manage": user_has_role(request.user, ADMINISTRATOR),
        },
    )


@sensitive_post_parameters()
@sudo_required
def kit_new(request):
    """Create a kit: on success the response shows each custodian's page once; nothing of
    it is stored, and the page may not be cached or shown again."""
    from breakglass.keys.forms import KitCreateForm
    from breakglass.keys.kits import KitRefused, kit_create

    if not user_has_role(request.user, ADMINISTRATOR):
        return HttpResponseForbidden("Only administrators can create a kit.")
    form = KitCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            kit, pages, _ = kit_create(
                kit_id=data["kit_id"],
                audiences=data["audiences"],
                scopes=data["scopes"],
                max_lifetime_minutes=data["max_lifetime_minutes"],
                custodians=data["custodians"],
                threshold=data["threshold"],
                valid_days=data["valid_days"],
                ssh_paths=data["ssh_paths"],
                actor=request.user,
            )
        except (KitRefused, services.KeysNotReady) as exc:
            form.add_error(None, str(exc))
        else:
            response = render(request, "keys/kit_shares.html", {"kit": kit, "pages": pages})
            response["Cache-Control"] = "no-store"
            return response
    return render(request, "keys/kit_new.html", {"form": form})


@require_POST
def kit_check(request):
    from breakglass.keys.forms import KitCheckForm
    from breakglass.keys.kits import KitRefused, kit_custodian_check

    form = KitCheckForm(request.POST)
    if form.is_valid():
        try:
            custodian = kit_custodian_check(code=form.cleaned_data["code"], actor=request.user)
        except KitRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                f"Recorded: {custodian.name}'s share of {custodian.kit.kit_id} is readable.",
            )
    else:
        messages.error(request, "Paste the check code.")
    return redirect("keys:kits")


@sudo_required
def kit_retire_view(request, kit_id: str):
    from breakglass.keys.forms import KitRetireForm
    from breakglass.keys.kits import kit_retire
    from breakglass.keys.models import Kit

    if not user_has_role(request.user, ADMINISTRATOR):
        return HttpResponseForbidden("Only administrators can retire a kit.")
    kit = Kit.objects.filter(kit_id=kit_id).first()
    if kit is None:
        return redirect("keys:kits")
    form = KitRetireForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        kit_retire(kit=kit, reason=form.cleaned_data["reason"], actor=request.user)
        messages.success(request, f"Kit {kit.kit_id} retired; the next bundle refuses its tokens.")
        return redirect("keys:kits")
    return render(request, "keys/kit_retire.html", {"kit": kit, "form": form})
