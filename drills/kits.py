"""Drilling the sealed kit: the reconstruction drill (a game-day step) and the figures
the drill report and the resilience score take from kits (docs/drills.md)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, transaction

from breakglass.audit.services import audit_record
from breakglass.core.kit import KitError, kit_load, rebuild_proof_verify
from breakglass.keys.models import Kit
from breakglass.keys.selectors import kits_status
from drills.errors import DrillError
from drills.models import GameDay, KitDrill


def kit_drill_challenge(*, game_day: GameDay, kit: Kit) -> str:
    """What the custodians pass to `breakglass kit rebuild --challenge`: ties the signed
    proof to this game day and kit, so an old proof cannot be recorded again."""
    message = f"kit-drill:{game_day.pk}:{kit.kit_id}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()[:16]


def kit_drill_record(*, game_day: GameDay, kit: Kit, proof: str, actor=None) -> KitDrill:
    """Record a reconstruction drill from the proof line `breakglass kit rebuild` printed:
    signed by the kit key (so k custodians really rebuilt it), with this game day's
    challenge, by at least k distinct custodians of this kit."""
    try:
        statement = rebuild_proof_verify(proof, kit_load(kit.document, None))
    except KitError as exc:
        raise DrillError(str(exc)) from None
    if statement.get("challenge") != kit_drill_challenge(game_day=game_day, kit=kit):
        raise DrillError(
            "the proof was made for another game day or kit; use this page's challenge"
        )
    names = {c.name for c in kit.custodians.all()}
    people = statement.get("custodians")
    if not isinstance(people, list) or len(set(people)) < kit.threshold or not set(people) <= names:
        raise DrillError(f"the proof does not name {kit.threshold} of the kit's custodians")
    seconds, at = statement.get("seconds"), statement.get("at")
    if type(seconds) is not int or type(at) is not int or seconds < 0:
        raise DrillError("the proof lacks its time taken")
    try:
        with transaction.atomic():
            drill = KitDrill.objects.create(
                kit=kit,
                game_day=game_day,
                custodians=sorted(set(people)),
                seconds=seconds,
                rebuilt_at=datetime.fromtimestamp(at, tz=UTC),
                recorded_by=actor,
                proof=proof.strip(),
            )
            audit_record(
                action="drill.kit_reconstructed",
                actor=actor,
                obj=drill,
                data={
                    "kit": kit.kit_id,
                    "game_day": game_day.pk,
                    "custodians": drill.custodians,
                    "seconds": seconds,
                    "rebuilt_at": drill.rebuilt_at.isoformat(),
                },
            )
    except IntegrityError:
        raise DrillError(f"kit {kit.kit_id} was already reconstructed in this game day") from None
    return drill


def kit_report_rows(*, end: datetime) -> list[dict]:
    """One row per active kit for the drill report: custodians' last checks, the last
    reconstruction drill, red when fewer than k custodians checked in 90 days, and the
    date its opening was last proven (what the resilience score ages, like a path's pass)."""
    rows = []
    for status in kits_status(now=end, include_retired=False):
        kit = status.kit
        last_drill = kit.drills.filter(rebuilt_at__lte=end).order_by("-rebuilt_at").first()
        checks = sorted(
            (c.last_checked_at for c in status.custodians if c.last_checked_at), reverse=True
        )
        # k custodians proved their shares by the k-th most recent check: the kit opened then.
        proven = [checks[kit.threshold - 1]] if len(checks) >= kit.threshold else []
        if last_drill:
            proven.append(last_drill.rebuilt_at)
        last_proven = max(proven) if proven else None
        rows.append(
            {
                "kit": kit.kit_id,
                "threshold": kit.threshold,
                "custodians": [
                    {
                        "name": c.name,
                        "last_checked": c.last_checked_at.isoformat()
                        if c.last_checked_at
                        else None,
                    }
                    for c in status.custodians
                ],
                "checked_in_90_days": status.checked_recently,
                "red": status.red,
                "problems": status.problems,
                "last_reconstruction": last_drill.rebuilt_at.isoformat() if last_drill else None,
                "last_reconstruction_seconds": last_drill.seconds if last_drill else None,
                "last_reconstruction_people": last_drill.custodians if last_drill else [],
                "days_since_proven": (end - last_proven).days if last_proven else None,
            }
        )
    return rows
