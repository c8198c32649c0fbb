"""Public trust documents and the keys console page. No view ever loads a private key."""

from __future__ import annotations

import hashlib

from django.contrib import messages
from django.http import HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect, render
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
    """The path's CA line for sshd's TrustedUserCAKeys (public, like the bundle)."""
    ca = selectors.ssh_ca_of_path(path_slug=path_slug)
    if ca is None:
        return HttpResponse(
            f"no SSH path {path_slug!r}\n", status=404, content_type="text/plain; charset=utf-8"
        )
    body = (ca.ssh_public_line() + "\n").encode("ascii")
    return _public_file(request, body, etag=f"ca-{ca.kid}", content_type="text/plain")


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
