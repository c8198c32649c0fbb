"""Keys, tokens, SSH certificates, revocation and the trust bundle (see docs/token-format.md
and docs/trust-bundle.md). Every write is one transaction with its audit event.

Over 500 lines on purpose, for now: every writer here takes the one trust lock
(`_lock_trust`) and shares the key-decryption helpers, and four branches (ssh, kit,
secadmin, reliability) were changing it at once when the house was restructured. The
split by entity (issuer keys and tokens, SSH CAs and certificates, revocation, bundle
publish/import, files on disk) is the next step once they have landed.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from breakglass.audit.models import AuditEvent
from breakglass.audit.selectors import audit_head
from breakglass.audit.services import audit_record
from breakglass.core.bundle import BUNDLE_TYPE, roots_load, verify_bundle
from breakglass.core.errors import VerificationError
from breakglass.core.files import file_write_atomic
from breakglass.core.jws import jws_sign
from breakglass.core.keys import key_thumbprint, public_x
from breakglass.core.krl import krl_from_bundle, trusted_ca_file
from breakglass.core.signing import bundle_sign
from breakglass.core.ssh import DEFAULT_EXTENSIONS, InvalidSshPublicKey, ssh_user_certificate
from breakglass.keys.crypto import SecretError, secret_decrypt, secret_encrypt
from breakglass.keys.keycache import key_cache_forget, key_cache_get
from breakglass.keys.models import Issuer, Kit, RevokedCredential, SigningKey, TrustBundle
from breakglass.keys.selectors import (
    KeysNotReady,
    bundle_latest,
    bundle_latest_version,
    issuer_current,
    issuer_key_signing,
    issuer_resolve,
    published_bundle_path,
    published_roots_path,
    published_ssh_dir,
    revocations_unpublished,
    root_keys_active,
    roots_export,
)
from breakglass.project.errors import DomainError
from breakglass.project.files import public_dir_make

__all__ = [
    "BundleImportError",
    "BundleSigningUnavailable",
    "InvalidSshPublicKey",
    "KeysNotReady",
    "RevocationNotPublished",
    "SecretError",
    "TokenRequestInvalid",
]

logger = logging.getLogger(__name__)

ISSUER_KEY_LIFETIME = timedelta(days=365)
ROOT_KEY_LIFETIME = timedelta(days=10 * 365)
SSH_CA_LIFETIME = timedelta(days=10 * 365)
# The scheduler rotates the issuer key this long before it would stop being valid.
ISSUER_ROTATE_BEFORE = timedelta(days=30)
# Arbitrary constant naming the trust bundle's advisory lock on PostgreSQL ("bgtrust").
_PG_LOCK_KEY = 0x6267_7472_7573_74


class BundleSigningUnavailable(DomainError):
    """Fewer than the threshold of root keys are held by the server (hardened mode):
    prepare the payload with `bundle_prepare` and have root holders sign it offline."""

    code = "offline_signing_needed"
    status = 409


class BundleImportError(DomainError, ValueError):
    """An offline-signed bundle was refused; `str()` says why."""

    code = "bundle_refused"


class TokenRequestInvalid(DomainError, ValueError):
    """token_mint was asked for something the token format cannot express safely."""

    code = "token_request_invalid"


def _lock_trust() -> None:
    """Serialise everything that changes keys or the bundle, so two publishers never both
    read version N and both write N+1 (the unique constraint is the backstop). SQLite
    transactions are IMMEDIATE (see settings) and already hold the write lock."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PG_LOCK_KEY])


def _key_context(kid: str) -> str:
    return f"signing-key:{kid}"


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def _key_create(*, purpose: str, name: str, lifetime: timedelta) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    kid = key_thumbprint(private)
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    now = timezone.now()
    return SigningKey.objects.create(
        purpose=purpose,
        kid=kid,
        name=name,
        public_key=public_x(private),
        private_key_encrypted=secret_encrypt(raw, context=_key_context(kid)),
        not_before=now,
        not_after=now + lifetime,
        state=SigningKey.State.ACTIVE,
    )


def _key_private(key: SigningKey) -> Ed25519PrivateKey:
    blob = bytes(key.private_key_encrypted or b"")
    if not blob:
        raise KeysNotReady(f"the server does not hold the private key of {key.kid}")
    return key_cache_get(
        kid=key.kid,
        blob=blob,
        kek=settings.BREAKGLASS_KEK,
        decrypt=lambda: Ed25519PrivateKey.from_private_bytes(
            secret_decrypt(blob, context=_key_context(key.kid))
        ),
    )


def _key_data(key: SigningKey) -> dict:
    return {
        "kid": key.kid,
        "purpose": key.purpose,
        "name": key.name,
        "not_before": key.not_before.isoformat(),
        "not_after": key.not_after.isoformat(),
    }


# --- Keys ---------------------------------------------------------------------------------


def keys_bootstrap(*, root_count: int = 3, threshold: int = 2) -> None:
    """Create what is missing: root keys, an active issuer key, a first published bundle.

    Idempotent. The threshold bundles are signed with is `BREAKGLASS_ROOT_THRESHOLD`;
    `threshold` is the minimum the new root set must support (both must fit root_count).
    """
    needed = max(threshold, settings.BREAKGLASS_ROOT_THRESHOLD)
    if threshold < 1 or root_count < needed:
        raise ValueError(
            f"{root_count} root keys cannot meet a threshold of {needed} "
            "(BREAKGLASS_ROOT_THRESHOLD and the requested threshold)"
        )
    with transaction.atomic():
        _lock_trust()
        if not Issuer.objects.filter(pk=1).exists():
            issuer = Issuer.objects.create(pk=1, url=settings.BREAKGLASS_ISSUER)
            audit_record(action="keys.issuer_set", obj=issuer, data={"issuer": issuer.url})
        if not root_keys_active():
            for number in range(1, root_count + 1):
                key = _key_create(
                    purpose=SigningKey.Purpose.ROOT,
                    name=f"root {number}",
                    lifetime=ROOT_KEY_LIFETIME,
                )
                audit_record(action="keys.root_created", obj=key, data=_key_data(key))
        if issuer_key_signing() is None:
            key = _key_create(
                purpose=SigningKey.Purpose.ISSUER, name="issuer", lifetime=ISSUER_KEY_LIFETIME
            )
            audit_record(action="keys.issuer_created", obj=key, data=_key_data(key))
        if bundle_latest() is None and _server_can_sign():
            bundle_publish(reason="bootstrap")


def issuer_set(*, url: str, actor=None) -> TrustBundle | None:
    """Change the deployment's issuer and re-sign the bundle under it.

    Every token issued before carries the old issuer and stops verifying once hosts
    fetch the new bundle; the command that calls this says so and asks for --confirm.
    """
    url = (url or "").strip().rstrip("/")
    if not url or len(url) > 2048 or any(c.isspace() for c in url):
        raise ValueError(
            "the issuer is one URL without spaces, e.g. https://breakglass.example.com"
        )
    with transaction.atomic():
        _lock_trust()
        issuer = Issuer.objects.select_for_update().filter(pk=1).first()
        previous = issuer.url if issuer else None
        if previous == url:
            return None
        Issuer.objects.update_or_create(pk=1, defaults={"url": url, "set_at": timezone.now()})
        audit_record(
            action="keys.issuer_changed",
            actor=actor,
            actor_label=None if actor else "command line",
            object_type="keys.issuer",
            object_id=1,
            data={"issuer": url, "previous": previous},
        )
        return _bundle_publish_if_possible(reason="issuer changed", actor=actor)


def issuer_key_rotate(*, actor=None) -> SigningKey:
    """A new issuer key signs from now on; the previous ones keep verifying (they stay in
    the bundle, state `retiring`) until their own `not_after`."""
    with transaction.atomic():
        _lock_trust()
        previous = list(
            SigningKey.objects.select_for_update().filter(
                purpose=SigningKey.Purpose.ISSUER, state=SigningKey.State.ACTIVE
            )
        )
        for key in previous:
            key.state = SigningKey.State.RETIRING
            key.save(update_fields=["state"])
            key_cache_forget(key.kid)
        new = _key_create(
            purpose=SigningKey.Purpose.ISSUER, name="issuer", lifetime=ISSUER_KEY_LIFETIME
        )
        audit_record(
            action="keys.issuer_rotated",
            actor=actor,
            obj=new,
            data={**_key_data(new), "previous": [key.kid for key in previous]},
        )
        _bundle_publish_if_possible(reason="issuer key rotated", actor=actor)
    return new


def key_retire(*, kid: str, actor=None) -> SigningKey:
    """Take a key out of use and out of the bundle (tokens it signed stop verifying)."""
    with transaction.atomic():
        _lock_trust()
        key = _key_for_update(kid)
        if key.state in (SigningKey.State.RETIRED, SigningKey.State.REVOKED):
            return key
        if key.purpose == SigningKey.Purpose.ROOT:
            raise ValueError("root keys change only by re-pinning roots (docs/trust-bundle.md)")
        if key.purpose == SigningKey.Purpose.ISSUER and key.state == SigningKey.State.ACTIVE:
            raise ValueError("rotate the issuer key first; the active key cannot be retired")
        key.state = SigningKey.State.RETIRED
        key.retired_at = timezone.now()
        key.save(update_fields=["state", "retired_at"])
        key_cache_forget(key.kid)
        audit_record(action="keys.retired", actor=actor, obj=key, data=_key_data(key))
        _bundle_publish_if_possible(reason="key retired", actor=actor)
    return key


def key_revoke(*, kid: str, reason: str, actor=None) -> SigningKey:
    """Distrust a key now: listed in the bundle's `revoked_kids`. Revoking the active
    issuer key rotates to a fresh one so emergency access keeps working."""
    with transaction.atomic():
        _lock_trust()
        key = _key_for_update(kid)
        if key.state == SigningKey.State.REVOKED:
            return key
        if key.purpose == SigningKey.Purpose.ROOT:
            raise ValueError("root keys change only by re-pinning roots (docs/trust-bundle.md)")
        was_signing = key.purpose == SigningKey.Purpose.ISSUER and (
            key.state == SigningKey.State.ACTIVE
        )
        key.state = SigningKey.State.REVOKED
        key.revoked_at = timezone.now()
        key.revoked_reason = reason[:500]
        key.save(update_fields=["state", "revoked_at", "revoked_reason"])
        key_cache_forget(key.kid)
        audit_record(
            action="keys.revoked",
            actor=actor,
            obj=key,
            data={**_key_data(key), "reason": reason[:500]},
        )
        if was_signing and issuer_key_signing() is None:
            # issuer_key_rotate publishes; its atomic() nests as a savepoint here.
            issuer_key_rotate(actor=actor)
        else:
            _bundle_publish_if_possible(reason="key revoked", actor=actor)
    return key


def _key_for_update(kid: str) -> SigningKey:
    key = SigningKey.objects.select_for_update().filter(kid=kid).first()
    if key is None:
        raise ValueError(f"no key with kid {kid!r}")
    return key


def ssh_ca_create(*, name: str) -> SigningKey:
    """A new Ed25519 SSH certificate authority (put its public line in TrustedUserCAKeys)."""
    name = (name or "").strip()
    if not name:
        raise ValueError("an SSH CA needs a name")
    with transaction.atomic():
        key = _key_create(purpose=SigningKey.Purpose.SSH_CA, name=name, lifetime=SSH_CA_LIFETIME)
        audit_record(action="keys.ssh_ca_created", obj=key, data=_key_data(key))
    return key


# --- Credentials -----------------------------------------------------------------------------


def token_mint(
    *,
    subject: str,
    audience: str,
    scopes: list[str],
    path: str,
    incident: str | None,
    approvers: list[str],
    drill: bool,
    emergency: bool,
    not_before: datetime,
    expires_at: datetime,
    jti: str,
) -> str:
    """Sign a token with the current issuer key (format: docs/token-format.md)."""
    if not isinstance(audience, str) or not audience or " " in audience:
        raise TokenRequestInvalid("the audience is exactly one service slug")
    if not subject or not jti:
        raise TokenRequestInvalid("a token needs a subject and a jti")
    if not scopes or any(not isinstance(s, str) or not s or " " in s for s in scopes):
        raise TokenRequestInvalid("scopes must be non-empty strings without spaces")
    if expires_at <= not_before:
        raise TokenRequestInvalid("the token must expire after it becomes valid")
    lifetime = expires_at - not_before
    if lifetime > timedelta(minutes=settings.BREAKGLASS_MAX_TOKEN_LIFETIME_MINUTES):
        raise TokenRequestInvalid(
            f"tokens live at most {settings.BREAKGLASS_MAX_TOKEN_LIFETIME_MINUTES} minutes"
        )
    # No transaction of its own: nothing is written but the audit event, which joins the
    # caller's transaction (or opens one). The key and the stored issuer are one read.
    key = issuer_key_signing()
    if key is None:
        raise KeysNotReady("no active issuer key: run `manage.py init_keys`")
    if expires_at > key.not_after:
        # Verifiers refuse tokens outliving their key; the scheduler rotates long before.
        raise KeysNotReady("the issuer key expires before this token would: rotate it")
    now = timezone.now()
    claims = {
        "iss": issuer_resolve(key.issuer_url),
        "sub": subject,
        "aud": audience,
        "iat": _unix(now),
        "nbf": _unix(not_before),
        "exp": _unix(expires_at),
        "jti": jti,
        "scope": " ".join(scopes),
        "path": path,
        "incident": incident,
        "approvers": list(approvers),
        "drill": bool(drill),
        "emergency": bool(emergency),
    }
    token = jws_sign(claims, private_key=_key_private(key), kid=key.kid)
    audit_record(
        action="token.minted",
        object_type="keys.token",
        object_id=jti,
        data={
            "kid": key.kid,
            "sub": subject,
            "aud": audience,
            "scope": claims["scope"],
            "path": path,
            "nbf": claims["nbf"],
            "exp": claims["exp"],
            "drill": bool(drill),
        },
    )
    return token


def ssh_certificate_issue(
    *,
    ca: SigningKey,
    public_key: str,
    principals: list[str],
    key_id: str,
    serial: int,
    valid_after: datetime,
    valid_before: datetime,
    source_addresses: list[str] | None = None,
    force_command: str = "",
    extensions: list[str] | tuple[str, ...] = DEFAULT_EXTENSIONS,
) -> str:
    """An OpenSSH user certificate for `public_key`, signed by `ca`. Raises
    InvalidSshPublicKey (a ValueError with a human message) for unusable keys."""
    if ca.purpose != SigningKey.Purpose.SSH_CA:
        raise ValueError(f"key {ca.kid} is not an SSH certificate authority")
    with transaction.atomic():
        ca = SigningKey.objects.get(pk=ca.pk)
        if ca.state != SigningKey.State.ACTIVE:
            raise ValueError(f"SSH CA {ca.name or ca.kid} is {ca.state}, not active")
        certificate = ssh_user_certificate(
            ca_key=_key_private(ca),
            public_key=public_key,
            principals=list(principals),
            key_id=key_id,
            serial=serial,
            valid_after=_unix(valid_after),
            valid_before=_unix(valid_before),
            source_addresses=tuple(source_addresses or ()),
            force_command=force_command,
            extensions=tuple(extensions),
        )
        audit_record(
            action="ssh_certificate.issued",
            obj=ca,
            data={
                "ca": ca.kid,
                "key_id": key_id,
                "serial": serial,
                "principals": list(principals),
                "valid_after": valid_after.isoformat(),
                "valid_before": valid_before.isoformat(),
                "source_addresses": list(source_addresses or ()),
                "force_command": force_command,
            },
        )
    return certificate


def credential_revoke(
    *,
    jti: str,
    expires_at: datetime,
    reason: str,
    actor=None,
    ssh_ca: SigningKey | None = None,
    ssh_serial: int | None = None,
) -> None:
    """Revoke a token (or SSH certificate) by jti; idempotent. For a certificate, `ssh_ca`
    and `ssh_serial` put it in the bundle's `ssh` entry for its path, from which every
    host's KRL is built.

    The revocation is a row in the caller's transaction, whatever came before it: no
    bundle is signed while that transaction holds its locks. Once it commits, the same
    thread publishes (`revocations_publish`) before the outermost call returns, so a person
    who revokes is answered only when a published bundle lists the credential. Revocations
    that commit while another bundle is being signed ride the next one together.
    """
    if not jti:
        raise ValueError("credential_revoke needs a jti")
    if (ssh_ca is None) != (ssh_serial is None):
        raise ValueError("an SSH certificate is revoked by its CA and serial together")
    with transaction.atomic():
        revoked, created = RevokedCredential.objects.get_or_create(
            jti=jti,
            defaults={
                "expires_at": expires_at,
                "reason": reason[:500],
                "ssh_ca": ssh_ca,
                "ssh_serial": ssh_serial,
            },
        )
        if not created:
            return
        data = {"jti": jti, "expires_at": expires_at.isoformat(), "reason": reason[:500]}
        if ssh_ca is not None:
            data.update(ssh_ca=ssh_ca.kid, ssh_serial=ssh_serial)
        audit_record(action="token.revoked", actor=actor, obj=revoked, data=data)
        if expires_at > timezone.now():
            _publish_after_commit(actor=actor)


class RevocationNotPublished(DomainError):
    """The revocation committed, but no bundle could be published just after it."""

    code = "revocation_not_published"
    status = 503


class _PublishAfterCommit:
    """The one on-commit callback of a transaction that revoked something."""

    def __init__(self, actor) -> None:
        self.actor = actor
        self.ran = False

    def __call__(self) -> None:
        self.ran = True
        try:
            revocations_publish(actor=self.actor)
        except Exception as exc:
            # Not a database error any more: the revoking transaction has committed, and
            # retrying it (retry_transient) would only find the grant revoked already.
            raise RevocationNotPublished(
                f"The credential is revoked, but the trust bundle could not be published "
                f"yet ({type(exc).__name__}: {exc}); the scheduler tries again every minute."
            ) from exc


_deferred = threading.local()


@contextmanager
def revocations_published_together() -> Iterator[None]:
    """Revocations committed inside the block are published by one bundle when it ends,
    not each by its own call: for a batch of drill runs, whose re-seal checks read the
    bundle only after the block. Nobody waits on a person's revocation here. Outside any
    transaction only; the block's end publishes even when it ends with an exception."""
    if getattr(_deferred, "depth", 0) == 0:
        _deferred.revoked = False
    _deferred.depth = getattr(_deferred, "depth", 0) + 1
    try:
        yield
    finally:
        _deferred.depth -= 1
        if _deferred.depth == 0 and _deferred.revoked:
            _deferred.revoked = False
            revocations_publish()


def _publish_after_commit(*, actor) -> None:
    if getattr(_deferred, "depth", 0):
        _deferred.revoked = True  # published when revocations_published_together ends
        return
    conn = transaction.get_connection()
    for _savepoints, callback, _robust in conn.run_on_commit:
        if isinstance(callback, _PublishAfterCommit) and not callback.ran:
            return  # one publish covers every revocation of the transaction
    transaction.on_commit(_PublishAfterCommit(actor))


def revocations_publish(*, actor=None) -> TrustBundle | None:
    """Make sure the published bundle lists every revocation committed so far; return the
    bundle this call signed, or None when there was nothing left to publish.

    Group commit: the trust lock is held while a bundle is signed, so callers queue on it.
    The first one through signs a bundle carrying every revocation committed by then, and
    marks them (`bundle_version`); those queued behind it find their revocation already
    marked and return without signing. However many revocations arrive at once, each
    waits for at most the bundle in progress and the next, and the number of bundles
    signed is bounded by how long one takes, not by the number of revocations.

    Before returning, the published files are current (written here, or by the other
    publisher, whose write this waits for): a host or drill reading them sees the
    revocation. In hardened mode nothing can be signed here: the revocation stays
    unpublished, audited as waiting for offline signing, and `bundle_prepare` carries it.
    """
    with transaction.atomic():
        _lock_trust()
        bundle = None
        if revocations_unpublished().exists():
            bundle = _bundle_publish_if_possible(reason="revocations", actor=actor)
    trust_files_write(roots=False)
    return bundle


# --- Trust bundle ------------------------------------------------------------------------------


def _server_signers() -> list[tuple[str, Ed25519PrivateKey]]:
    held = [key for key in root_keys_active() if bytes(key.private_key_encrypted or b"")]
    if len(held) < settings.BREAKGLASS_ROOT_THRESHOLD:
        raise BundleSigningUnavailable(
            f"the server holds {len(held)} root key(s); {settings.BREAKGLASS_ROOT_THRESHOLD} "
            "are needed: sign offline (manage.py bundle_prepare, then bundle_import)"
        )
    return [(key.kid, _key_private(key)) for key in held[: settings.BREAKGLASS_ROOT_THRESHOLD]]


def _server_can_sign() -> bool:
    held = [key for key in root_keys_active() if bytes(key.private_key_encrypted or b"")]
    return len(held) >= settings.BREAKGLASS_ROOT_THRESHOLD


def bundle_payload_build(*, version: int | None = None) -> dict:
    """The unsigned payload for the next bundle (format: breakglass/core/signing.py)."""
    now = timezone.now()
    if version is None:
        version = bundle_latest_version() + 1
    keys = SigningKey.objects.filter(
        purpose=SigningKey.Purpose.ISSUER,
        state__in=[SigningKey.State.ACTIVE, SigningKey.State.RETIRING],
        not_after__gt=now,
    ).order_by("not_before", "kid")
    # Expired revocations drop out: verifiers reject an expired token on `exp` anyway.
    revoked = (
        RevokedCredential.objects.filter(expires_at__gt=now)
        .order_by("jti")
        .values_list("jti", "expires_at")
    )
    revoked_kids = [
        key.kid for key in SigningKey.objects.filter(state=SigningKey.State.REVOKED).order_by("kid")
    ]
    # Every kit still within its validity travels in every bundle (so hosts keep its
    # certificate after the bundle expires); a retired one also has its kid revoked.
    kits = list(Kit.objects.filter(not_after__gt=now).order_by("kit_id"))
    revoked_kids += [kit.kid for kit in kits if kit.state == Kit.State.RETIRED]
    extra = {}
    head = audit_head()
    if head is not None:
        # Every host holding this bundle becomes a witness of the audit log (see
        # `verify_audit --witness`): rewriting history would mean forging root signatures.
        extra["audit_head"] = {"seq": head[0], "hash": head[1]}
    return {
        "type": BUNDLE_TYPE,
        "version": version,
        "issuer": issuer_current(),
        "issued_at": _unix(now),
        "expires_at": _unix(now + timedelta(hours=settings.BREAKGLASS_BUNDLE_LIFETIME_HOURS)),
        "max_token_lifetime": settings.BREAKGLASS_MAX_TOKEN_LIFETIME_MINUTES * 60,
        "keys": [
            {
                "kid": key.kid,
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "x": key.public_key,
                "not_before": _unix(key.not_before),
                "not_after": _unix(key.not_after),
            }
            for key in keys
        ],
        "revoked_jti": [{"jti": jti, "exp": _unix(expires)} for jti, expires in revoked],
        "revoked_kids": sorted(revoked_kids),
        "ssh": _bundle_ssh_entries(now),
        "kits": [kit.document for kit in kits],
        **extra,
    }


def _bundle_ssh_entries(now: datetime) -> list[dict]:
    """Per SSH path: its CA's public line and the serials of its revoked, unexpired
    certificates. Signed with the rest of the payload, so `breakglass sync` installs the
    CA and builds the KRL (`breakglass.core.krl.krl_from_bundle`) from authenticated data:
    whoever sits on the network cannot un-revoke a certificate by serving an older KRL."""
    revoked: dict[int, list[int]] = {}
    for ca_id, serial in RevokedCredential.objects.filter(
        expires_at__gt=now, ssh_ca__isnull=False
    ).values_list("ssh_ca_id", "ssh_serial"):
        revoked.setdefault(ca_id, []).append(serial)
    # Through the reverse relation BackupPath.ssh_ca (related_name "backup_paths"), so the
    # keys app needs no import of the access app. Inactive paths stay: their hosts need
    # the KRL until the last certificate has expired.
    # A path whose CA was revoked or retired stays listed with "trusted": false, so hosts
    # stop trusting that CA at their next sync instead of keeping the last file they had.
    cas = SigningKey.objects.filter(
        purpose=SigningKey.Purpose.SSH_CA, backup_paths__isnull=False
    ).values_list("pk", "name", "public_key", "state", "backup_paths__slug")
    trusted_states = (SigningKey.State.ACTIVE, SigningKey.State.RETIRING)
    entries = []
    for pk, name, public_key, state, slug in sorted(cas, key=lambda row: row[4]):
        key = SigningKey(name=name, public_key=public_key)
        entries.append(
            {
                "path": slug,
                "ca": key.ssh_public_line(),
                "trusted": state in trusted_states,
                "revoked_serials": sorted(revoked.get(pk, [])),
            }
        )
    return entries


def _bundle_store(*, document: dict, reason: str, actor, imported: bool) -> TrustBundle:
    payload = document["payload"]
    bundle = TrustBundle.objects.create(
        version=payload["version"],
        document=document,
        issued_at=datetime.fromtimestamp(payload["issued_at"], tz=UTC),
        expires_at=datetime.fromtimestamp(payload["expires_at"], tz=UTC),
        reason=reason[:200],
        imported=imported,
    )
    audit_record(
        action="bundle.imported" if imported else "bundle.published",
        actor=actor,
        obj=bundle,
        data={
            "version": bundle.version,
            "reason": reason[:200],
            "keys": [k["kid"] for k in payload["keys"]],
            # Both lists may be omitted from a bundle (absent means empty).
            "revoked_jti": len(payload.get("revoked_jti", [])),
            "revoked_kids": list(payload.get("revoked_kids", [])),
            "signed_by": [s["kid"] for s in document["signatures"]],
            "expires_at": bundle.expires_at.isoformat(),
        },
    )
    transaction.on_commit(lambda: trust_files_write(document=document, roots=False))
    return bundle


def bundle_publish(*, reason: str, actor=None) -> TrustBundle:
    """Sign and store the next bundle (version + 1) with the root threshold; after commit
    write bundle.json and roots.json to TRUST_PUBLISH_DIR. Raises BundleSigningUnavailable
    in hardened mode, where root keys live offline."""
    with transaction.atomic():
        _lock_trust()  # taken again by the same transaction: granted at once
        signers = _server_signers()
        version = bundle_latest_version() + 1
        # Marked first, read after: every row marked here is committed and so is seen by
        # the payload's query below (which may also see later ones; they are marked by the
        # next bundle, which lists them again).
        RevokedCredential.objects.filter(bundle_version__isnull=True).update(bundle_version=version)
        payload = bundle_payload_build(version=version)
        document = bundle_sign(payload, signers)
        return _bundle_store(document=document, reason=reason, actor=actor, imported=False)


def _bundle_publish_if_possible(*, reason: str, actor=None) -> TrustBundle | None:
    try:
        return bundle_publish(reason=reason, actor=actor)
    except BundleSigningUnavailable:
        # Hardened mode: the change is recorded; root holders must sign the next bundle.
        audit_record(
            action="bundle.offline_signing_needed", actor=actor, data={"reason": reason[:200]}
        )
        logger.warning("trust bundle needs offline signing: %s", reason)
        return None


def bundle_import(*, document: dict, actor=None) -> TrustBundle:
    """Publish a bundle signed offline.

    The bundle must pass exactly what every verifier will check (`verify_bundle` against
    our roots: threshold of distinct roots, structure, thumbprints, freshness), so the
    server never publishes a bundle its verifiers refuse. Then the server-side checks:
    newer than the published version, our issuer, and no revocation left out.
    """
    with transaction.atomic():
        _lock_trust()
        try:
            verified = verify_bundle(document, roots_export(), now=_unix(timezone.now()))
        except VerificationError as exc:
            raise BundleImportError(str(exc)) from None
        payload = verified.payload
        latest = bundle_latest()
        current = latest.version if latest else 0
        if verified.version <= current:
            raise BundleImportError(
                f"bundle version {verified.version} is not newer than the published "
                f"version {current}"
            )
        if verified.issuer != issuer_current():
            raise BundleImportError(f"the bundle is for issuer {verified.issuer!r}")
        _bundle_keeps_revocations(payload)
        # verify_bundle checked the head's shape; the chain must still contain it.
        head = verified.audit_head
        if head is not None and not AuditEvent.objects.filter(seq=head[0], hash=head[1]).exists():
            raise BundleImportError(
                f"the payload's audit head #{head[0]} is not in this server's audit log"
            )
        retired = Kit.objects.filter(state=Kit.State.RETIRED, not_after__gt=timezone.now())
        if retired.exclude(kid__in=payload.get("revoked_kids") or []).exists():
            raise BundleImportError(
                "the payload predates a kit retirement: run bundle_prepare again and re-sign"
            )
        listed = [entry["jti"] for entry in payload.get("revoked_jti") or []]
        for start in range(0, len(listed), 1000):
            RevokedCredential.objects.filter(
                bundle_version__isnull=True, jti__in=listed[start : start + 1000]
            ).update(bundle_version=verified.version)
        clean = {"payload": payload, "signatures": list(document["signatures"])}
        return _bundle_store(document=clean, reason="offline import", actor=actor, imported=True)


def _bundle_keeps_revocations(payload: dict) -> None:
    """Refuse a payload that would un-revoke anything the server has revoked.

    A payload prepared before a `credential_revoke` or `key_revoke` and signed afterwards
    by the offline roots is genuine, but publishing it would make every verifier trust
    the stolen token or the compromised issuer key again. Root holders sign what they
    are given; the server is the one party that knows what has been revoked since.
    """
    listed = {
        entry.get("jti") for entry in payload.get("revoked_jti") or [] if isinstance(entry, dict)
    }
    missing = RevokedCredential.objects.filter(expires_at__gt=timezone.now()).exclude(
        jti__in=listed
    )
    if missing.exists():
        raise BundleImportError(
            f"the payload predates a revocation (token {missing.order_by('jti')[0].jti} is "
            "not in revoked_jti): run bundle_prepare again and re-sign"
        )
    offered = {key.get("kid") for key in payload.get("keys") or [] if isinstance(key, dict)}
    revoked_kids = set(payload.get("revoked_kids") or [])
    for key in SigningKey.objects.filter(
        state__in=[SigningKey.State.REVOKED, SigningKey.State.RETIRED]
    ).order_by("kid"):
        if key.kid in offered:
            raise BundleImportError(
                f"the payload trusts issuer key {key.kid}, which is {key.state} on this "
                "server: run bundle_prepare again and re-sign"
            )
        if key.state == SigningKey.State.REVOKED and key.kid not in revoked_kids:
            raise BundleImportError(
                f"the payload predates the revocation of key {key.kid} (not in "
                "revoked_kids): run bundle_prepare again and re-sign"
            )


def roots_import(*, document: dict, actor=None) -> list[SigningKey]:
    """Hardened mode: pin root public keys created offline. Server-held roots not in the
    file are retired, so from now on only the offline holders can sign bundles."""
    try:
        trusted = roots_load(document)
    except VerificationError as exc:
        raise ValueError(str(exc)) from None
    threshold = trusted.threshold
    publics = {kid: public for kid, (public, _raw) in trusted.keys.items()}
    if threshold != settings.BREAKGLASS_ROOT_THRESHOLD:
        raise ValueError(
            f"the roots file has threshold {threshold}; set BREAKGLASS_ROOT_THRESHOLD={threshold}"
        )
    now = timezone.now()
    with transaction.atomic():
        _lock_trust()
        for key in root_keys_active():
            if key.kid not in publics:
                key.state = SigningKey.State.RETIRED
                key.retired_at = now
                key.save(update_fields=["state", "retired_at"])
                key_cache_forget(key.kid)
        pinned = []
        for kid, public in publics.items():
            key = SigningKey.objects.filter(kid=kid).first()
            if key is None:
                key = SigningKey.objects.create(
                    purpose=SigningKey.Purpose.ROOT,
                    kid=kid,
                    name="offline root",
                    public_key=public_x(public),
                    private_key_encrypted=b"",
                    not_before=now,
                    not_after=now + ROOT_KEY_LIFETIME,
                )
            elif key.purpose != SigningKey.Purpose.ROOT:
                raise ValueError(f"{kid} is already used as a {key.purpose} key")
            pinned.append(key)
        audit_record(
            action="keys.roots_imported",
            actor=actor,
            data={"threshold": threshold, "kids": sorted(publics)},
        )
        transaction.on_commit(trust_files_write)
    return pinned


def bundle_refresh() -> TrustBundle | None:
    """Scheduler housekeeping: rotate an issuer key nearing its end, mark expired retiring
    keys retired, and republish when the bundle expires within the refresh margin."""
    now = timezone.now()
    with transaction.atomic():
        _lock_trust()
        for key in SigningKey.objects.filter(
            state=SigningKey.State.RETIRING, not_after__lte=now
        ).select_for_update():
            key.state = SigningKey.State.RETIRED
            key.retired_at = now
            key.save(update_fields=["state", "retired_at"])
            key_cache_forget(key.kid)
            audit_record(action="keys.retired", obj=key, data=_key_data(key))
        signing = issuer_key_signing()
        if signing is not None and signing.not_after - now <= ISSUER_ROTATE_BEFORE:
            issuer_key_rotate(actor=None)
        latest = bundle_latest()
        margin = timedelta(hours=settings.BREAKGLASS_BUNDLE_REFRESH_MARGIN_HOURS)
        ssh_changed = latest is not None and _ssh_paths_of(latest.document["payload"]) != (
            _ssh_paths_of({"ssh": _bundle_ssh_entries(now)})
        )
        # A revocation whose publish never ran (its process died right after the commit).
        unpublished = revocations_unpublished().exists()
        fresh = latest is not None and latest.expires_at - now > margin
        if fresh and not ssh_changed and not unpublished:
            return None
        if not _server_can_sign():
            logger.warning(
                "trust bundle expires soon, SSH paths changed or revocations wait: sign it offline"
            )
            return None
        # A new SSH path (or a path given another CA) reaches hosts within one refresh.
        if ssh_changed:
            reason = "SSH paths changed"
        elif unpublished:
            reason = "revocations"
        else:
            reason = "scheduled refresh"
        return bundle_publish(reason=reason)


def _ssh_paths_of(payload: dict) -> set[tuple[str, str]]:
    return {(entry["path"], entry["ca"]) for entry in payload.get("ssh") or []}


# --- Publishing to disk ---------------------------------------------------------------------


def _write_json_atomic(path: Path, value: dict) -> None:
    """Readers see the old file or the new one, never half of one."""
    public_dir_make(path.parent)
    encoded = json.dumps(value, indent=2, sort_keys=True).encode("utf-8") + b"\n"
    file_write_atomic(path, encoded, mode=0o644)


def _write_if_changed(path: Path, data: bytes) -> None:
    """Replace the file only when its bytes change: each write is two fsyncs, and most
    bundles change no SSH path's CA or KRL, and never the roots."""
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    public_dir_make(path.parent)
    file_write_atomic(path, data, mode=0o644)


# bundle.json's version by (inode, mtime, size): each write replaces the file (a new
# inode), so a change is never missed, and an unchanged file is not parsed again.
_version_on_disk: dict[tuple[int, int, int], int] = {}


def _published_version(path: Path) -> int:
    try:
        stat = path.stat()
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if key not in _version_on_disk:
            version = int(json.loads(path.read_bytes())["payload"]["version"])
            _version_on_disk.clear()
            _version_on_disk[key] = version
        return _version_on_disk[key]
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def trust_files_write(*, document: dict | None = None, roots: bool = True) -> None:
    """Write the latest bundle and the roots to TRUST_PUBLISH_DIR.

    `document`: the bundle the caller just stored, used if it is still the latest (saves
    loading it back). `roots=False`: the caller changed no root key, so roots.json is
    written only if it is missing.

    Two commits' callbacks can run out of order (in one process or several), and reading
    "the latest row" is not enough on its own: a callback that read version N before
    another commit could still write after the one that wrote N+1, leaving a bundle on
    disk that lacks a revocation. So writers take an exclusive lock on the folder, read
    the latest row *inside* it (reads only ever move forward), and never replace a file
    with an older version. A file already at the latest version is left alone, so a
    caller that only needs the files to be current (`revocations_publish`) pays a stat.
    """
    import fcntl

    bundle_path = published_bundle_path()
    public_dir_make(bundle_path.parent)
    with open(bundle_path.parent / ".publish.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        roots_path = published_roots_path()
        if roots or not roots_path.exists():
            try:
                roots_document = roots_export()
            except KeysNotReady:
                return
            _write_if_changed(
                roots_path,
                json.dumps(roots_document, indent=2, sort_keys=True).encode("utf-8") + b"\n",
            )
        latest_version = bundle_latest_version()
        if not latest_version:
            return
        on_disk = _published_version(bundle_path)
        if latest_version == on_disk:
            return
        if latest_version < on_disk:
            # Only after a database restore: verifiers that saw the newer version would
            # refuse this one anyway (anti-rollback). Publish past it: `bundle_publish`.
            logger.error(
                "not publishing bundle version %s over version %s already on disk",
                latest_version,
                on_disk,
            )
            return
        if document is None or document["payload"]["version"] != latest_version:
            document = TrustBundle.objects.get(version=latest_version).document
        _write_json_atomic(bundle_path, document)
        _ssh_files_write(document["payload"])


def _ssh_files_write(payload: dict) -> None:
    """Beside bundle.json: ssh/<path>/ca.pub and ssh/<path>/revoked.krl for every SSH
    path in the bundle, built from the bundle itself (the bytes `breakglass sync` makes)."""
    for entry in payload.get("ssh") or []:
        folder = published_ssh_dir(entry["path"])
        _write_if_changed(folder / "ca.pub", trusted_ca_file(payload, [entry["path"]]))
        _write_if_changed(folder / "revoked.krl", krl_from_bundle(payload, entry["path"]))
