"""API tokens for automation: created once, stored hashed, scoped, expiring, revocable.

A token is a second way in beside the console, so it must not be a weaker one:

- it expires (BREAKGLASS_API_TOKEN_DAYS, at most BREAKGLASS_API_TOKEN_MAX_DAYS);
- it carries scopes, checked by every endpoint (`api_token_allows`): `read` (list paths
  and grants), `request` (request, self-issue, revoke own grants), `approve` (approve,
  with the approver's current OTP in the body, as before), `credential` (receive issued
  credentials in responses);
- the console demands a fresh OTP to show a credential, so the API returns one only to a
  token with the `credential` scope that was itself created right after an OTP (sudo)
  and lives at most BREAKGLASS_API_TOKEN_CREDENTIAL_HOURS (`api_token_credential_refusal`).
  A stolen long-lived automation token therefore cannot collect credentials.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from breakglass.access.errors import GrantError
from breakglass.access.models import ApiToken
from breakglass.accounts import roles
from breakglass.audit.services import audit_record

API_TOKEN_PREFIX = "bgt_"
API_TOKEN_SCOPES = ("read", "request", "approve", "credential")
API_TOKEN_DEFAULT_SCOPES = ("read", "request")


def _lifetime(*, scopes: list[str], lifetime: timedelta | None) -> timedelta:
    longest = timedelta(days=settings.BREAKGLASS_API_TOKEN_MAX_DAYS)
    if "credential" in scopes:
        longest = timedelta(hours=settings.BREAKGLASS_API_TOKEN_CREDENTIAL_HOURS)
        lifetime = lifetime or longest
    lifetime = lifetime or timedelta(days=settings.BREAKGLASS_API_TOKEN_DAYS)
    if lifetime <= timedelta(0):
        raise GrantError("A token must live for some time.", code="bad_lifetime")
    if lifetime > longest:
        what = "with the credential scope " if "credential" in scopes else ""
        raise GrantError(
            f"A token {what}lives at most {_human(longest)}.", code="lifetime_over_maximum"
        )
    return lifetime


def _human(span: timedelta) -> str:
    if span % timedelta(days=1) == timedelta(0) and span >= timedelta(days=2):
        days = span // timedelta(days=1)
        return f"{days} day{'s' if days != 1 else ''}"
    hours = span // timedelta(hours=1)
    return f"{hours} hour{'s' if hours != 1 else ''}"


def api_token_create(
    *,
    user: User,
    name: str,
    scopes: list[str] | tuple[str, ...] = API_TOKEN_DEFAULT_SCOPES,
    lifetime: timedelta | None = None,
    fresh_otp: bool = False,
) -> tuple[ApiToken, str]:
    """A new API token for `user`. The token is returned once and stored only hashed.

    `fresh_otp` says the caller checked an OTP moments ago (the console's sudo step);
    without it the `credential` scope is refused."""
    name = (name or "").strip()
    if not name:
        raise GrantError(
            "Give the token a name, such as the automation that will use it.", code="missing_name"
        )
    requested = set(scopes or ())
    unknown = sorted(requested - set(API_TOKEN_SCOPES))
    scopes = [scope for scope in API_TOKEN_SCOPES if scope in requested]
    if unknown or not scopes:
        raise GrantError(f"Choose scopes among {', '.join(API_TOKEN_SCOPES)}.", code="bad_scopes")
    if "credential" in scopes and not fresh_otp:
        raise GrantError(
            "A token with the credential scope can only be created right after entering "
            "an OTP code.",
            code="otp_required",
            status=403,
        )
    now = timezone.now()
    expires_at = now + _lifetime(scopes=scopes, lifetime=lifetime)
    raw = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name[:100],
            prefix=raw[:12],
            token_hash=ApiToken.hash_of(raw),
            created_at=now,
            expires_at=expires_at,
            scopes=scopes,
            created_with_fresh_otp=fresh_otp,
        )
        audit_record(
            action="api_token.created",
            actor=user,
            obj=token,
            data={
                "name": token.name,
                "scopes": scopes,
                "expires_at": expires_at.isoformat(),
                "fresh_otp": fresh_otp,
            },
        )
    return token, raw


def api_token_revoke(*, token: ApiToken, actor: User) -> None:
    if token.user_id != actor.pk and not roles.user_has_role(actor, roles.ADMINISTRATOR):
        raise GrantError("You can only revoke your own API tokens.", code="not_allowed", status=403)
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        audit_record(action="api_token.revoked", actor=actor, obj=token, data={"name": token.name})


def api_token_authenticate(*, raw: str) -> ApiToken | None:
    """The live token (with its active user) for this secret, or None. An expired token
    is a GrantError saying so, so automation learns why it stopped working."""
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
    if token.expired:
        raise GrantError(
            f"This API token expired at {token.expires_at:%Y-%m-%d %H:%M} UTC; create a new "
            "one in the console.",
            code="token_expired",
            status=401,
        )
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token


def api_token_allows(*, token: ApiToken, scope: str) -> bool:
    return scope in (token.scopes or [])


def api_token_credential_refusal(*, token: ApiToken) -> str | None:
    """Why this token may not receive credentials, or None if it may. The one home of the
    rule; the API asks it before putting a credential in any response."""
    if not api_token_allows(token=token, scope="credential"):
        return "this API token lacks the credential scope; open the grant in the console"
    longest = timedelta(hours=settings.BREAKGLASS_API_TOKEN_CREDENTIAL_HOURS)
    if not token.created_with_fresh_otp or token.expires_at - token.created_at > longest:
        return (
            "credentials go only to tokens created right after an OTP code and living at "
            f"most {_human(longest)}"
        )
    return None
