"""Reads: the current bundle, the root file, where they are published, keys to watch."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Subquery
from django.utils import timezone

from breakglass.core.keys import public_from_x
from breakglass.core.krl import KrlError, krl_from_bundle, trusted_ca_file
from breakglass.core.signing import roots_document
from breakglass.keys.models import Issuer, RevokedCredential, SigningKey, TrustBundle
from breakglass.project.errors import DomainError

logger = logging.getLogger(__name__)
# Configured issuers this process has already warned about (warn once, not per token).
_warned_issuers: set[tuple[str, str]] = set()


class KeysNotReady(DomainError):
    """Keys have not been created yet (run `manage.py init_keys`) or cannot sign here."""

    code = "keys_not_ready"
    status = 503


def issuer_current() -> str:
    """The issuer every token and bundle carries: the stored one (see `Issuer`).

    Before keys exist nothing is stored yet and the configured `BREAKGLASS_ISSUER` is
    what `keys_bootstrap` will store. A process configured with another issuer signs with
    the stored one anyway and says so once: re-stamping would break every valid token.
    """
    return issuer_resolve(Issuer.objects.filter(pk=1).values_list("url", flat=True).first())


def issuer_resolve(stored: str | None) -> str:
    """`issuer_current` given the stored issuer already read (None: none stored yet)."""
    configured = settings.BREAKGLASS_ISSUER
    if stored is None:
        return configured
    if configured != stored and (stored, configured) not in _warned_issuers:
        _warned_issuers.add((stored, configured))
        logger.warning(
            "BREAKGLASS_ISSUER/BREAKGLASS_BASE_URL here is %r but this deployment's issuer "
            "is %r: signing with %r (change it only with `manage.py set_issuer`)",
            configured,
            stored,
            stored,
        )
    return stored


def bundle_latest() -> TrustBundle | None:
    return TrustBundle.objects.order_by("-version").first()


def bundle_latest_version() -> int:
    """The latest bundle's version (0 before the first), without loading its document."""
    return TrustBundle.objects.order_by("-version").values_list("version", flat=True).first() or 0


def revocations_unpublished():
    """Unexpired revocations no published bundle lists yet (normally none: each is
    published just after its transaction commits; see keys.services.revocations_publish)."""
    return RevokedCredential.objects.filter(
        bundle_version__isnull=True, expires_at__gt=timezone.now()
    )


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


def published_ssh_dir(path_slug: str) -> Path:
    return Path(settings.TRUST_PUBLISH_DIR) / "ssh" / path_slug


def ssh_ca_of_path(*, path_slug: str) -> SigningKey | None:
    """The CA of an SSH path (through BackupPath.ssh_ca's reverse relation)."""
    return (
        SigningKey.objects.defer("private_key_encrypted")
        .filter(purpose=SigningKey.Purpose.SSH_CA, backup_paths__slug=path_slug)
        .first()
    )


class SshTrustUnavailable(Exception):
    """No KRL can be given for this path yet; `str()` says why, for humans."""


def ssh_krl_published(*, path_slug: str) -> tuple[int, bytes]:
    """(bundle version, KRL bytes) for an SSH path, built from the latest bundle, so it is
    exactly what `breakglass sync` installs from that bundle."""
    return _ssh_file_published(path_slug, krl_from_bundle)


def ssh_ca_published(*, path_slug: str) -> tuple[int, bytes]:
    """(bundle version, ca.pub bytes) for an SSH path, built from the latest bundle: the
    path's CA line and those of the live sealed kits covering it, exactly what `breakglass
    sync` installs from that bundle."""
    return _ssh_file_published(path_slug, lambda payload, slug: trusted_ca_file(payload, [slug]))


def _ssh_file_published(path_slug: str, build) -> tuple[int, bytes]:
    latest = bundle_latest()
    if latest is None:
        raise SshTrustUnavailable("no trust bundle has been published yet: run init_keys")
    try:
        return latest.version, build(latest.document["payload"], path_slug)
    except KrlError as exc:
        raise SshTrustUnavailable(str(exc)) from None


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
    """The key that signs new tokens: the newest active issuer key valid right now.

    It carries `issuer_url`, the stored issuer read in the same query (None before one
    is stored), so minting reads both at once: `issuer_resolve(key.issuer_url)`.
    """
    now = timezone.now()
    return (
        SigningKey.objects.filter(
            purpose=SigningKey.Purpose.ISSUER,
            state=SigningKey.State.ACTIVE,
            not_before__lte=now,
            not_after__gt=now,
        )
        .annotate(issuer_url=Subquery(Issuer.objects.filter(pk=1).values("url")[:1]))
        .order_by("-not_before", "-pk")
        .first()
    )


def kit_ssh_policy_problems(*, payload: dict) -> list[str]:
    """How a kit's SSH entries differ from the current policy of the paths they cover
    (the one rule: registering such a kit is refused, and an active one is flagged for
    re-keying). A kit whose certificates carried other principals or critical options
    than the path's own would bypass the path's policy and its two-person changes."""
    from breakglass.access.selectors import ssh_path_policies

    entries = payload.get("ssh", [])
    if not entries:
        return []
    current = ssh_path_policies(slugs=[entry["path"] for entry in entries])
    problems = []
    for entry in entries:
        policy = current.get(entry["path"])
        if policy is None:
            problems.append(f"{entry['path']} is not an active SSH path with a CA")
            continue
        differ = [name for name in policy if policy[name] != entry[name]]
        if differ:
            details = "; ".join(
                f"{name}: the path has {policy[name]!r}, the kit {entry[name]!r}" for name in differ
            )
            problems.append(f"its policy for {entry['path']} is not the path's ({details})")
    return problems


# A kit is "red" when fewer than its threshold of custodians proved their share readable
# within this window: the kit might not open when it is needed (drill report, console).
KIT_EXPIRY_WARNING = timedelta(days=30)
KIT_CHECK_WINDOW = timedelta(days=90)


@dataclass(frozen=True)
class KitStatus:
    kit: object
    custodians: list
    checked_recently: int
    red: bool
    problems: list[str]


def kits_status(*, now=None, include_retired: bool = True) -> list[KitStatus]:
    """Each kit with its custodians' last checks and what needs doing (the one rule for
    the console's kits page, the drill report's kit section and the resilience score)."""
    from breakglass.keys.models import Kit

    now = now or timezone.now()
    kits = Kit.objects.prefetch_related("custodians").order_by("state", "-created_at")
    if not include_retired:
        kits = kits.filter(state=Kit.State.ACTIVE)
    result = []
    for kit in kits:
        custodians = list(kit.custodians.all())
        recent = sum(
            1
            for c in custodians
            if c.last_checked_at is not None and now - c.last_checked_at <= KIT_CHECK_WINDOW
        )
        problems = []
        active = kit.state == Kit.State.ACTIVE
        if active and recent < kit.threshold:
            problems.append(
                f"only {recent} of {kit.threshold} needed custodians checked their share "
                f"in the last {KIT_CHECK_WINDOW.days} days"
            )
        if active and kit.not_after <= now:
            problems.append("expired: create a new kit")
        elif active and kit.not_after - now <= KIT_EXPIRY_WARNING:
            problems.append(f"expires {kit.not_after:%Y-%m-%d}: create its successor")
        if active and kit.rekey_needed_at:
            problems.append("used: make a new kit (new shares) and retire this one")
        if active:
            problems += [
                f"SSH: {problem}: make a new kit with the paths' policy and retire this one"
                for problem in kit_ssh_policy_problems(payload=kit.document["payload"])
            ]
        result.append(
            KitStatus(
                kit=kit,
                custodians=custodians,
                checked_recently=recent,
                red=active and (recent < kit.threshold or kit.not_after <= now),
                problems=problems,
            )
        )
    return result
