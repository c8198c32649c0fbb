"""The sealed offline kit on the server: register its public part, create one in the
console, retire it, record custodian checks (docs/operations.md, "The kit").

The server never holds a kit's private key. Console creation makes the key, splits it,
hands the share pages back to the caller to show once, and forgets the key; the
journal import that turns offline mints into grants lives in `breakglass.access.kits`.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from breakglass.audit.services import audit_record
from breakglass.core.errors import VerificationError
from breakglass.core.kit import (
    KitError,
    kit_key_split,
    kit_load,
    kit_payload,
    kit_ssh_entries,
    share_digest,
)
from breakglass.core.kit_cli import CHECK_CODE_PREFIX, check_key, share_page
from breakglass.core.signing import bundle_sign
from breakglass.keys.crypto import secret_decrypt, secret_encrypt
from breakglass.keys.models import Kit, KitCustodian
from breakglass.keys.selectors import (
    KeysNotReady,
    issuer_current,
    kit_ssh_policy_problems,
    roots_export,
)
from breakglass.keys.services import (
    BundleSigningUnavailable,
    _bundle_publish_if_possible,
    _lock_trust,
    _server_signers,
)
from breakglass.outbox.services import outbox_enqueue

# A check code is accepted for a day after the custodian's laptop printed it.
CHECK_CODE_MAX_AGE = timedelta(hours=24)


class KitRefused(ValueError):
    """A kit operation was refused; `str()` is one line a person can act on."""


def _when(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _check_context(kit_id: str, index: int) -> str:
    return f"kit-check:{kit_id}:{index}"


def kit_register(
    *,
    document: dict,
    check_keys: list[str] | None = None,
    custodian_users: list[User | None] | None = None,
    actor: User | None = None,
) -> Kit:
    """Record a kit's public part and publish a bundle carrying it.

    `document` is {"payload", "signatures"}: signed offline by the root threshold, or
    unsigned when the server holds the roots (default mode), which then certifies it.
    `check_keys` (from `breakglass kit create`) let custodians prove their share later.
    """
    payload = document.get("payload") if isinstance(document, dict) else None
    if not isinstance(payload, dict):
        raise KitRefused("not a kit file: it has no payload (breakglass kit create writes one)")
    with transaction.atomic():
        _lock_trust()
        roots = roots_export()
        signatures = document.get("signatures") or []
        if not signatures:
            try:
                signers = _server_signers()
            except BundleSigningUnavailable as exc:
                raise KitRefused(
                    f"the kit is not signed and {exc}; have root holders sign it with "
                    "python -m breakglass.core.signing sign"
                ) from None
            document = bundle_sign(payload, signers)
        try:
            kit = kit_load({"payload": payload, "signatures": document["signatures"]}, roots)
        except VerificationError as exc:
            raise KitRefused(f"kit refused: {exc}") from None
        if kit.issuer != issuer_current():
            raise KitRefused(f"the kit is for issuer {kit.issuer!r}, not this server's")
        if kit.not_after <= int(timezone.now().timestamp()):
            raise KitRefused(f"kit {kit.kit_id} has already expired")
        if Kit.objects.filter(kit_id=kit.kit_id).exists():
            raise KitRefused(f"a kit named {kit.kit_id} exists already; choose another id")
        problems = kit_ssh_policy_problems(payload=payload)
        if problems:
            raise KitRefused(
                f"kit {kit.kit_id} refused: {'; '.join(problems)}. Export the paths' "
                "policy again (manage.py export_ssh_policy) and make the kit with it"
            )
        if check_keys is not None and len(check_keys) != len(kit.custodians):
            raise KitRefused("check_keys must have one entry per custodian")
        row = Kit.objects.create(
            kit_id=kit.kit_id,
            kid=kit.kid,
            public_key=payload["x"],
            document={"payload": payload, "signatures": document["signatures"]},
            audiences=list(kit.audiences),
            scopes=list(kit.scopes),
            max_lifetime_minutes=kit.max_lifetime // 60,
            threshold=kit.threshold,
            not_before=_when(kit.not_before),
            not_after=_when(kit.not_after),
        )
        for index, name in enumerate(kit.custodians):
            user = (custodian_users or [None] * len(kit.custodians))[index]
            secret = (check_keys or [None] * len(kit.custodians))[index]
            KitCustodian.objects.create(
                kit=row,
                index=index,
                name=name,
                user=user,
                check_key_encrypted=(
                    secret_encrypt(secret.encode(), context=_check_context(kit.kit_id, index))
                    if secret
                    else b""
                ),
            )
        audit_record(
            action="kit.registered",
            actor=actor,
            obj=row,
            data={
                "kit": kit.kit_id,
                "kid": kit.kid,
                "audiences": list(kit.audiences),
                "scopes": list(kit.scopes),
                "max_lifetime": kit.max_lifetime,
                "threshold": kit.threshold,
                "custodians": kit.custodians,
                "ssh_paths": list(kit.ssh),
                "signed_by": kit.signed_by,
                "not_after": row.not_after.isoformat(),
            },
        )
        # A new kit is a new way in: the security contacts hear of it, whoever made it.
        source = f"keys.kit:{row.pk}"
        for email in settings.BREAKGLASS_SECURITY_CONTACTS:
            outbox_enqueue(
                kind="email",
                idempotency_key=f"{source}:registered:{email}",
                recipient=email,
                source=source,
                payload={
                    "subject": f"[Breakglass] New sealed kit {kit.kit_id}",
                    "body": (
                        f"A {kit.threshold}-of-{len(kit.custodians)} kit was registered by "
                        f"{actor.get_username() if actor else 'a command'}: custodians "
                        f"{', '.join(kit.custodians)}; covers {', '.join(kit.audiences)} "
                        f"({', '.join(kit.scopes)})"
                        + "".join(f", SSH path {path}" for path in kit.ssh)
                        + f"; credentials up to {kit.max_lifetime // 60} "
                        f"minutes, until {row.not_after:%Y-%m-%d}.\n\nIf this is unexpected, "
                        f"retire it: {settings.BREAKGLASS_BASE_URL}/trust/kits/"
                    ),
                    "to": [email],
                },
            )
        _bundle_publish_if_possible(reason=f"kit {kit.kit_id} registered", actor=actor)
    return row


def kit_create(
    *,
    kit_id: str,
    audiences: list[str],
    scopes: list[str],
    max_lifetime_minutes: int,
    custodians: list[tuple[str, User | None]],
    threshold: int,
    valid_days: int = 730,
    ssh_paths: list[str] = (),
    actor: User | None = None,
) -> tuple[Kit, list[str], list[str]]:
    """Create a kit on the server (default mode): returns the kit, one printable page per
    custodian and the raw shares, for the caller to show once. Neither is stored; the
    private key is dropped when this returns. `ssh_paths`: SSH paths the kit also mints
    certificates for, with each path's current certificate policy."""
    from breakglass.access.selectors import ssh_path_policies

    names = [name for name, _ in custodians]
    policies = ssh_path_policies(slugs=list(ssh_paths))
    unknown = [slug for slug in ssh_paths if slug not in policies]
    if unknown:
        raise KitRefused(f"not an active SSH path with a CA: {', '.join(unknown)}")
    try:
        key, share_set, mnemonics = kit_key_split(custodians=names, threshold=threshold)
        now = int(timezone.now().timestamp())
        payload = kit_payload(
            kit_id=kit_id,
            issuer=issuer_current(),
            public_key=key.public_key(),
            audiences=audiences,
            scopes=scopes,
            max_lifetime=max_lifetime_minutes * 60,
            threshold=threshold,
            custodians=[(n, share_digest(m)) for n, m in zip(names, mnemonics, strict=True)],
            share_set=share_set,
            not_before=now,
            not_after=now + valid_days * 86400,
            ssh=kit_ssh_entries(key, list(policies.values())),
        )
    except (KitError, VerificationError) as exc:
        raise KitRefused(str(exc)) from None
    del key
    kit = kit_register(
        document={"payload": payload, "signatures": []},
        check_keys=[check_key(m) for m in mnemonics],
        custodian_users=[user for _, user in custodians],
        actor=actor,
    )
    pages = [
        share_page(kit_id=kit_id, custodian=name, number=n, payload=payload, mnemonic=m)
        for n, (name, m) in enumerate(zip(names, mnemonics, strict=True), 1)
    ]
    return kit, pages, mnemonics


def kit_retire(*, kit: Kit, reason: str, actor: User | None = None) -> Kit:
    """Retire a kit: its key id goes into the bundle's revoked_kids, so every verifier
    that takes the next bundle refuses its tokens. Idempotent."""
    with transaction.atomic():
        _lock_trust()
        kit = Kit.objects.select_for_update().get(pk=kit.pk)
        if kit.state == Kit.State.RETIRED:
            return kit
        kit.state = Kit.State.RETIRED
        kit.retired_at = timezone.now()
        kit.save(update_fields=["state", "retired_at"])
        audit_record(
            action="kit.retired",
            actor=actor,
            obj=kit,
            data={"kit": kit.kit_id, "kid": kit.kid, "reason": reason[:500]},
        )
        _bundle_publish_if_possible(reason=f"kit {kit.kit_id} retired", actor=actor)
    return kit


def kit_custodian_check(*, code: str, actor: User | None = None) -> KitCustodian:
    """Record a custodian check from the code `breakglass kit check` printed. The code
    proves the share was read (an HMAC under a key derived from the share), not the share."""
    parts = (code or "").strip().split(".")
    if len(parts) != 5 or parts[0] != CHECK_CODE_PREFIX or not parts[2].isdigit():
        raise KitRefused(
            "that is not a check code; paste the last line `breakglass kit check` printed"
        )
    _, kit_id, index, stamp, mac = parts
    custodian = (
        KitCustodian.objects.select_related("kit")
        .filter(kit__kit_id=kit_id, index=int(index))
        .first()
    )
    if custodian is None:
        raise KitRefused(f"no custodian {index} in a kit named {kit_id!r}")
    if not bytes(custodian.check_key_encrypted or b""):
        raise KitRefused("this kit was registered without check keys; checks cannot be recorded")
    secret = secret_decrypt(
        bytes(custodian.check_key_encrypted), context=_check_context(kit_id, custodian.index)
    ).decode()
    message = ".".join(parts[:4])
    expected = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()[:32]
    if not stamp.isdigit() or not hmac.compare_digest(expected, mac):
        raise KitRefused("the check code does not match this custodian's share")
    checked = _when(int(stamp))
    now = timezone.now()
    if checked > now + timedelta(minutes=5) or now - checked > CHECK_CODE_MAX_AGE:
        raise KitRefused(
            "the check code is older than a day (or from the future): run the check again"
        )
    with transaction.atomic():
        custodian = KitCustodian.objects.select_for_update().get(pk=custodian.pk)
        if custodian.last_checked_at is None or custodian.last_checked_at < checked:
            custodian.last_checked_at = checked
            custodian.save(update_fields=["last_checked_at"])
        audit_record(
            action="kit.custodian_checked",
            actor=actor,
            obj=custodian.kit,
            data={"kit": kit_id, "custodian": custodian.name, "checked_at": checked.isoformat()},
        )
    return custodian


def kit_export(*, kit: Kit | None = None) -> dict:
    """The kit file for custodians' laptops: the signed certificate (public part only)."""
    if kit is None:
        kit = Kit.objects.filter(state=Kit.State.ACTIVE).order_by("-created_at").first()
        if kit is None:
            raise KeysNotReady("no active kit: create one (console or breakglass kit create)")
    return kit.document
