"""Reads: the current bundle, the root file, where they are published, keys to watch."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from breakglass.core.keys import public_from_x
from breakglass.core.signing import roots_document
from breakglass.keys.models import SigningKey, TrustBundle
from breakglass.project.errors import DomainError


class KeysNotReady(DomainError):
    """Keys have not been created yet (run `manage.py init_keys`) or cannot sign here."""

    code = "keys_not_ready"
    status = 503


def bundle_latest() -> TrustBundle | None:
    return TrustBundle.objects.order_by("-version").first()


def bundle_current() -> dict | None:
    """The latest published bundle document (payload + signatures), or None before the first."""
    latest = bundle_latest()
    return latest.document if latest is not None else None


def root_keys_active() -> list[SigningKey]:
    return list(
        SigningKey.objects.filter(
            purpose=SigningKey.Purpose.ROOT, state=SigningKey.State.ACTIVE
        ).order_by("kid")
    )


def roots_export() -> dict:
    """The root file verifiers pin: root public keys and the signature threshold."""
    roots = root_keys_active()
    if not roots:
        raise KeysNotReady("no root keys yet: run `manage.py init_keys`")
    try:
        return roots_document(
            [public_from_x(key.public_key) for key in roots],
            threshold=settings.BREAKGLASS_ROOT_THRESHOLD,
        )
    except ValueError as exc:
        raise KeysNotReady(f"BREAKGLASS_ROOT_THRESHOLD does not fit the root keys: {exc}") from None


def published_bundle_path() -> Path:
    return Path(settings.TRUST_PUBLISH_DIR) / "bundle.json"


def published_roots_path() -> Path:
    return Path(settings.TRUST_PUBLISH_DIR) / "roots.json"


def keys_expiring(*, within: timedelta) -> list[SigningKey]:
    """Active keys whose validity ends within `within` (rotate them before they do)."""
    return list(
        SigningKey.objects.filter(
            state=SigningKey.State.ACTIVE, not_after__lte=timezone.now() + within
        ).order_by("not_after")
    )


def keys_list() -> list[SigningKey]:
    # defer(): the console never needs the encrypted private key, so it never loads it.
    return list(
        SigningKey.objects.defer("private_key_encrypted").order_by("purpose", "-not_before")
    )


def issuer_key_signing() -> SigningKey | None:
    """The key that signs new tokens: the newest active issuer key valid right now."""
    now = timezone.now()
    return (
        SigningKey.objects.filter(
            purpose=SigningKey.Purpose.ISSUER,
            state=SigningKey.State.ACTIVE,
            not_before__lte=now,
            not_after__gt=now,
        )
        .order_by("-not_before", "-pk")
        .first()
    )
