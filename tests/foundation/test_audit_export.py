"""export_audit writes JSON lines that anyone can re-verify without Django."""

import json
import subprocess
import sys

import pytest
from django.core.management import call_command

from breakglass.audit.services import audit_record
from breakglass.core.hashchain import main as hashchain_main
from tests.foundation.test_audit_verify import audit_log_emptied

pytestmark = pytest.mark.django_db


@pytest.fixture
def exported(tmp_path, responder):
    audit_log_emptied()
    for n in range(3):
        audit_record(action="test.exported", actor=responder, data={"n": n, "names": ["a", "é"]})
    out = tmp_path / "audit.jsonl"
    call_command("export_audit", out=str(out))
    return out


def test_the_export_has_one_event_per_line_with_its_hashes(exported):
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3]
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    assert lines[0]["record"]["actor"] == "rita-responder"
    assert lines[2]["record"]["data"] == {"n": 2, "names": ["a", "é"]}


def test_an_export_verifies_with_nothing_but_python(exported):
    # A fresh interpreter with only the standard library path of breakglass.core.
    result = subprocess.run(
        [sys.executable, "-m", "breakglass.core.hashchain", str(exported)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: 3 events, head #3")
    assert "django" not in result.stdout.lower()


def test_an_edited_export_is_rejected_naming_the_event(exported, capsys):
    lines = exported.read_text().splitlines()
    lines[1] = lines[1].replace('"n":1', '"n":7')
    exported.write_text("\n".join(lines) + "\n")
    assert hashchain_main([str(exported)]) == 1
    assert "BROKEN: event 2: content does not match its hash (edited)" in capsys.readouterr().out


def test_a_truncated_export_is_rejected_given_the_recorded_head(exported, capsys):
    lines = exported.read_text().splitlines()
    head = json.loads(lines[-1])
    exported.write_text("\n".join(lines[:-1]) + "\n")
    assert hashchain_main([str(exported)]) == 0
    assert hashchain_main([str(exported), "--head", f"3:{head['hash']}"]) == 1
    assert "event 3: missing" in capsys.readouterr().out


def test_a_garbled_export_is_reported_not_raised(tmp_path, capsys):
    garbled = tmp_path / "garbled.jsonl"
    garbled.write_text("not json\n")
    assert hashchain_main([str(garbled)]) == 1
    assert "line 1 is not an exported event" in capsys.readouterr().out


def test_a_missing_export_file_is_a_usage_error(tmp_path, capsys):
    assert hashchain_main([str(tmp_path / "nope.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_export_to_an_unwritable_place_is_a_clear_error(tmp_path):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="cannot write"):
        call_command("export_audit", out=str(tmp_path / "no" / "such" / "dir.jsonl"))
