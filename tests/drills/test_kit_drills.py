"""Drilling the sealed kit: reconstruction as a game-day step, checks in the drill report,
and the kit counted in the resilience score like a path."""

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from breakglass.audit.models import AuditEvent
from breakglass.core.kit import kit_key_rebuild, kit_load, rebuild_proof, share_check
from breakglass.core.kit_cli import check_code
from breakglass.keys.kits import kit_create, kit_custodian_check
from devkit.factories import verified_client
from drills.errors import DrillError
from drills.kits import kit_drill_challenge, kit_drill_record
from drills.models import GameDay, KitDrill
from drills.reports import report_build, report_text

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sealed(trust):
    kit, _, shares = kit_create(
        kit_id="kit-ops",
        audiences=["sso"],
        scopes=["ssh:login"],
        max_lifetime_minutes=60,
        custodians=[("Alice", None), ("Bob", None), ("Carol", None)],
        threshold=2,
    )
    return kit, shares


@pytest.fixture
def game_day(db):
    return GameDay.objects.create(name="Q4 game day")


def cli_rebuild(kit, shares, challenge, tmp_path) -> str:
    """What the custodians run together: the real CLI, shares on standard input."""
    import json

    kit_file = tmp_path / "kit.json"
    kit_file.write_text(json.dumps(kit.document))
    result = subprocess.run(
        [sys.executable, "-m", "breakglass.core", "kit", "rebuild", "--kit-file", kit_file,
         "--challenge", challenge],
        input="\n".join(shares) + "\n", capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "nothing was minted" in result.stdout
    return result.stdout.strip().splitlines()[-1]


def test_a_reconstruction_proof_records_people_and_time(sealed, game_day, coordinator, tmp_path):
    kit, shares = sealed
    proof = cli_rebuild(kit, shares[1:], kit_drill_challenge(game_day=game_day, kit=kit), tmp_path)
    drill = kit_drill_record(game_day=game_day, kit=kit, proof=proof, actor=coordinator)
    assert drill.custodians == ["Bob", "Carol"] and drill.seconds >= 0
    assert AuditEvent.objects.filter(action="drill.kit_reconstructed").count() == 1
    with pytest.raises(DrillError, match="already reconstructed in this game day"):
        kit_drill_record(game_day=game_day, kit=kit, proof=proof, actor=coordinator)


def test_a_proof_for_another_game_day_or_signed_by_another_key_is_refused(
    sealed, game_day, tmp_path
):
    kit, shares = sealed
    other_day = GameDay.objects.create(name="earlier")
    old = cli_rebuild(kit, shares[:2], kit_drill_challenge(game_day=other_day, kit=kit), tmp_path)
    with pytest.raises(DrillError, match="made for another game day"):
        kit_drill_record(game_day=game_day, kit=kit, proof=old)
    from devkit.keykit import seeded_key

    certified = kit_load(kit.document, None)
    forged = rebuild_proof(
        certified,
        seeded_key("not the kit"),
        custodians=["Alice", "Bob"],
        seconds=1,
        at=0,
        challenge=kit_drill_challenge(game_day=game_day, kit=kit),
    )
    with pytest.raises(DrillError, match="not signed by kit kit-ops's key"):
        kit_drill_record(game_day=game_day, kit=kit, proof=forged)
    one_person = rebuild_proof(
        certified,
        kit_key_rebuild(certified, [share_check(certified, s) for s in shares[:2]]),
        custodians=["Alice"],
        seconds=1,
        at=0,
        challenge=kit_drill_challenge(game_day=game_day, kit=kit),
    )
    with pytest.raises(DrillError, match="does not name 2 of the kit's custodians"):
        kit_drill_record(game_day=game_day, kit=kit, proof=one_person)
    assert not KitDrill.objects.exists()


def test_the_game_day_page_takes_the_proof(sealed, game_day, coordinator, tmp_path):
    kit, shares = sealed
    client = verified_client(coordinator)
    page = client.get(f"/drills/gamedays/{game_day.pk}/").text
    challenge = kit_drill_challenge(game_day=game_day, kit=kit)
    assert challenge in page
    proof = cli_rebuild(kit, shares[:2], challenge, tmp_path)
    response = client.post(
        f"/drills/gamedays/{game_day.pk}/kits/kit-ops/", {"proof": proof}, follow=True
    )
    assert "Kit kit-ops rebuilt by Alice, Bob" in response.text


def check(kit, share):
    certified = kit_load(kit.document, None)
    now = int(timezone.now().timestamp())
    kit_custodian_check(code=check_code(certified, share_check(certified, share), now=now))


def test_a_kit_with_fewer_than_k_recent_checks_is_red_and_scores_zero(sealed):
    kit, shares = sealed
    check(kit, shares[0])
    report = report_build(days=7)
    (row,) = report["kits"]
    assert row["red"] and row["checked_in_90_days"] == 1 and row["score"] == 0
    assert report["resilience_score"] == 0  # the only thing counted is the kit
    assert "kit-ops RED: 1 of 2 needed" in report_text(report)


def test_k_recent_checks_make_the_kit_green_and_it_ages_like_a_path(sealed):
    kit, shares = sealed
    check(kit, shares[0])
    check(kit, shares[2])
    report = report_build(days=7)
    assert not report["kits"][0]["red"] and report["kits"][0]["score"] == 100
    assert report["resilience_score"] == 100
    with time_machine.travel(timezone.now() + timedelta(days=60)):
        aged = report_build(days=7)
    assert aged["kits"][0]["score"] == 50 and not aged["kits"][0]["red"]
    with time_machine.travel(timezone.now() + timedelta(days=91)):
        assert report_build(days=7)["kits"][0]["red"]
