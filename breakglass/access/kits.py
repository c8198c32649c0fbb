"""Bringing offline kit mints back into the record (`manage.py kit_import`).

Each journal line (signed by the kit key, breakglass/core/kit.py), a token or an SSH
certificate, becomes an emergency grant marked with its kit, on the path serving the
token's audience or on the certificate's SSH path: in the hash-chained audit log,
announced to the path's approvers and the security contacts through the outbox, and
waiting in the post-use review queue. The kit is flagged for re-keying: its shares were
typed on a laptop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from breakglass.access.credentials import _notify_on_use
from breakglass.access.models import BackupPath, Grant
from breakglass.audit.services import audit_record
from breakglass.core._parse import ParseError, json_decode
from breakglass.core.errors import VerificationError
from breakglass.core.kit import JOURNAL_TYPE, KitError, journal_verify, kit_load
from breakglass.keys.kits import KitRefused
from breakglass.keys.models import Kit
from breakglass.keys.selectors import roots_export


@dataclass(frozen=True)
class KitImportResult:
    kit: Kit
    imported: list[Grant]
    already: int


def _when(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _first_record(data: bytes) -> object:
    for line in data.split(b"\n"):
        if line.strip():
            try:
                return json_decode(line, limit=64 * 1024)
            except ParseError:
                return None
    return None


def _path_for(kit: Kit, record: dict) -> BackupPath:
    if "ssh" in record:
        slug = record["ssh"]["path"]
        path = BackupPath.objects.filter(
            slug=slug, method=BackupPath.Method.SSH_CERTIFICATE
        ).first()
        if path is None:
            raise KitRefused(
                f"kit {kit.kit_id} minted an SSH certificate for path {slug!r}, but there is "
                "no such SSH path; restore it, then run kit_import again (nothing was imported)"
            )
        return path
    audience = record["aud"]
    path = (
        BackupPath.objects.select_related("service")
        .filter(service__slug=audience)
        .order_by("-is_active", "method", "pk")
        .first()
    )
    if path is None:
        raise KitRefused(
            f"kit {kit.kit_id} minted for {audience!r}, but no backup path serves that "
            "service; add one, then run kit_import again (nothing was imported)"
        )
    return path


def kit_journal_import(*, data: bytes, actor: User | None = None) -> KitImportResult:
    """Verify a kit journal and record each mint once. All or nothing: a bad line
    imports nothing; running it again with the same journal changes nothing."""
    first = _first_record(data)
    if not isinstance(first, dict) or first.get("type") != JOURNAL_TYPE:
        raise KitRefused("not a kit journal (breakglass kit mint --journal writes one)")
    kit = Kit.objects.filter(kit_id=first.get("kit")).first()
    if kit is None:
        raise KitRefused(f"no kit named {first.get('kit')!r} is registered here")
    try:
        certified = kit_load(kit.document, roots_export())
        records = journal_verify(data, certified)
    except (KitError, VerificationError) as exc:
        raise KitRefused(f"journal refused: {exc}") from None

    imported: list[Grant] = []
    already = 0
    with transaction.atomic():
        # One importer at a time per kit, so two runs never both create one jti.
        kit = Kit.objects.select_for_update().get(pk=kit.pk)
        for record in records:
            if Grant.objects.filter(jti=record["jti"]).exists():
                already += 1
                continue
            path = _path_for(kit, record)
            ssh = record.get("ssh")
            requester = User.objects.filter(username=record["sub"]).first()
            issued_at = _when(record["iat"])
            expires_at = _when(record["exp"])
            grant = Grant.objects.create(
                path=path,
                requester=requester,
                reason=f"[kit {kit.kit_id}, for {record['sub']}] {record['reason']}",
                # A certificate carries principals, not scopes (they are in the audit data).
                scopes=[] if ssh else record["scope"].split(),
                ssh_public_key=ssh["public_key"] if ssh else "",
                lifetime_minutes=max(1, (record["exp"] - record["nbf"]) // 60),
                state=Grant.State.ISSUED if expires_at > timezone.now() else Grant.State.EXPIRED,
                emergency=True,
                kit=kit,
                jti=record["jti"],
                created_at=issued_at,
                request_expires_at=issued_at,
                issued_at=issued_at,
                expires_at=expires_at,
                review_required=True,
            )
            audit_record(
                action="grant.kit_imported",
                actor=actor,
                obj=grant,
                data={
                    "kit": kit.kit_id,
                    "path": path.slug,
                    "sub": record["sub"],
                    **({"ssh": ssh} if ssh else {"aud": record["aud"], "scope": record["scope"]}),
                    "iat": record["iat"],
                    "exp": record["exp"],
                    "custodians": record["custodians"],
                    "reason": record["reason"],
                    "journal_sig": record["sig"],
                },
            )
            _notify_on_use(grant=grant)
            imported.append(grant)
        if imported and kit.rekey_needed_at is None:
            kit.rekey_needed_at = timezone.now()
            kit.save(update_fields=["rekey_needed_at"])
            audit_record(
                action="kit.rekey_needed",
                actor=actor,
                obj=kit,
                data={"kit": kit.kit_id, "mints": [g.jti for g in imported]},
            )
    return KitImportResult(kit=kit, imported=imported, already=already)
