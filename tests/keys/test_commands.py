import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from breakglass.keys import selectors


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_init_keys_bootstraps_and_is_idempotent(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        output = run("init_keys")
    assert "trust bundle: version 1" in output
    assert selectors.published_bundle_path().exists()
    assert "trust bundle: version 1" in run("init_keys")


def test_export_roots_writes_the_pinned_file(trust, tmp_path):
    out = tmp_path / "roots.json"
    assert "3 root keys, threshold 2" in run("export_roots", "--out", str(out))
    assert json.loads(out.read_text()) == selectors.roots_export()


def test_export_bundle_writes_the_current_bundle(trust, tmp_path):
    out = tmp_path / "bundle.json"
    assert "version 1" in run("export_bundle", "--out", str(out))
    assert json.loads(out.read_text()) == selectors.bundle_current()


def test_exports_before_init_say_what_to_run(db, tmp_path):
    with pytest.raises(CommandError, match="init_keys"):
        run("export_bundle", "--out", str(tmp_path / "b.json"))
    with pytest.raises(CommandError, match="init_keys"):
        run("export_roots", "--out", str(tmp_path / "r.json"))


def test_export_to_an_unwritable_place_is_a_clear_error(trust):
    with pytest.raises(CommandError, match="cannot write"):
        run("export_bundle", "--out", "/proc/no-such-dir/bundle.json")


def test_rotate_issuer_key_publishes_the_new_key(trust):
    output = run("rotate_issuer_key")
    kid = selectors.issuer_key_signing().kid
    assert f"new issuer key {kid} is signing" in output
    assert "published in trust bundle version 2" in output


def test_init_keys_with_a_wrong_kek_is_a_clear_error(trust, settings):
    from breakglass.keys.models import TrustBundle

    TrustBundle.objects.all().delete()
    settings.BREAKGLASS_KEK = "another-key-encryption-key-entirely-000000"
    with pytest.raises(CommandError, match="different BREAKGLASS_KEK"):
        run("init_keys")


def test_bundle_prepare_writes_an_unsigned_payload(trust, tmp_path):
    out = tmp_path / "payload.json"
    assert "version 2" in run("bundle_prepare", "--out", str(out))
    document = json.loads(out.read_text())
    assert document["signatures"] == []
    assert document["payload"]["version"] == 2


def test_bad_input_exits_non_zero_without_a_traceback(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "manage.py", "bundle_import", str(tmp_path / "missing.json")],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
    )
    assert result.returncode == 1
    assert "cannot read" in result.stderr
    assert "Traceback" not in result.stderr
