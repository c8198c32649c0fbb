"""API tokens for automation: created once, stored hashed, revocable."""

from __future__ import annotations

import hmac
import secrets

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from breakglass.access.errors import GrantError
from breakglass.access.models import ApiToken
from breakglass.accounts import roles
from breakglass.audit.services import audit_record

API_TOKEN_PREFIX = "bgt_"


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """A new API token for `user`. The token is returned once and stored only hashed."""
    name = (name or "").strip()
    if not name:
        raise GrantError(
            "Give the token a name, such as the automation that will use it.", code="missing_name"
        )
    raw = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name[:100], prefix=raw[:12], token_hash=ApiToken.hash_of(raw)
        )
        audit_record(action="api_token.created", actor=user, obj=token, data={"name": token.name})
    return token, raw


def api_token_revoke(*, token: ApiToken, actor: User) -> None:
    if token.user_id != actor.pk and not roles.user_has_role(actor, roles.ADMINISTRATOR):
        raise GrantError("You can only revoke your own API tokens.", code="not_allowed", status=403)
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        audit_record(action="api_token.revoked", actor=actor, obj=token, data={"name": token.name})


def api_token_authenticate(*, raw: str) -> User | None:
    """The active user owning this API token, or None."""
    if not raw or not raw.startswith(API_TOKEN_PREFIX):
        return None
    digest = ApiToken.hash_of(raw)
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=digest, revoked_at__isnull=True)
        .first()
    )
    # The lookup is by hash already; the constant-time compare keeps it honest if the
    # lookup ever changes to something like a prefix match.
    if (
        token is None
        or not hmac.compare_digest(token.token_hash, digest)
        or not token.user.is_active
    ):
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user
