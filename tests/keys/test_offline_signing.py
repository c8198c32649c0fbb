"""Hardened mode: roots live offline, the server prepares payloads and imports signed ones."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from breakglass.core import signing as bundle_tool
from breakglass.keys import selectors, services
from breakglass.keys.models import TrustBundle


@pytest.fixture
def offline_roots(db, tmp_path, capsys):
    """Three root holders create keys offline; the server pins them (threshold 2)."""
    jwks = []
    pems = []
    for name in ("alice", "bob", "carol"):
        pem = tmp_path / f"{name}.pem"
        assert bundle_tool.main(["keygen", "--out", str(pem)]) == 0
        jwk = tmp_path / f"{name}.jwk"
        jwk.write_text(capsys.readouterr().out)
        jwks.append(str(jwk))
        pems.append(str(pem))
    roots = tmp_path / "roots.json"
    bundle_tool.main(["roots", "--threshold", "2", "--out", str(roots), *jwks])
    services.keys_bootstrap()  # server-held roots first, then replaced by the offline ones
    call_command("import_roots", str(roots))
    return {"pems": pems, "roots": json.loads(roots.read_text())}


def prepare(tmp_path) -> str:
    path = tmp_path / "payload.json"
    call_command("bundle_prepare", "--out", str(path))
    return str(path)


def test_keygen_writes_a_private_file_and_prints_only_the_public_jwk(tmp_path, capsys):
    pem = tmp_path / "root.pem"
    bundle_tool.main(["keygen", "--out", str(pem)])
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"kid", "kty", "crv", "x"}
    assert oct(pem.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(SystemExit, match="refusing to overwrite"):
        bundle_tool.main(["keygen", "--out", str(pem)])


def test_pinned_roots_are_exported_and_the_server_can_no_longer_sign(offline_roots):
    assert selectors.roots_export() == offline_roots["roots"]
    with pytest.raises(services.BundleSigningUnavailable, match="sign offline"):
        services.bundle_publish(reason="x")


def test_threshold_signed_payload_is_imported_and_published(
    offline_roots, tmp_path, django_capture_on_commit_callbacks
):
    path = prepare(tmp_path)
    for pem in offline_roots["pems"][:2]:
        assert bundle_tool.main(["sign", "--key", pem, path]) == 0
    with django_capture_on_commit_callbacks(execute=True):
        call_command("bundle_import", path)
    latest = selectors.bundle_latest()
    assert latest.imported and latest.version == 2
    assert json.loads(selectors.published_bundle_path().read_text()) == latest.document


def test_a_single_signature_is_refused(offline_roots, tmp_path):
    path = prepare(tmp_path)
    bundle_tool.main(["sign", "--key", offline_roots["pems"][0], path])
    bundle_tool.main(["sign", "--key", offline_roots["pems"][0], path])  # same holder again
    with pytest.raises(CommandError, match="signed by 1 distinct root key"):
        call_command("bundle_import", path)
    assert TrustBundle.objects.count() == 1


def test_an_old_version_is_refused(offline_roots, tmp_path):
    path = prepare(tmp_path)
    for pem in offline_roots["pems"]:
        bundle_tool.main(["sign", "--key", pem, path])
    call_command("bundle_import", path)
    with pytest.raises(CommandError, match="not newer than the published version 2"):
        call_command("bundle_import", path)


def test_a_payload_prepared_before_a_revocation_is_refused(offline_roots, tmp_path):
    path = prepare(tmp_path)
    services.credential_revoke(
        jti="stolen", expires_at=timezone.now() + timedelta(hours=1), reason="r"
    )
    for pem in offline_roots["pems"][:2]:
        bundle_tool.main(["sign", "--key", pem, path])
    with pytest.raises(CommandError, match="predates a revocation"):
        call_command("bundle_import", path)


def test_a_payload_prepared_before_an_issuer_key_revocation_is_refused(offline_roots, tmp_path):
    # The finding: prepare, revoke the issuer key, then two roots sign the earlier
    # payload. Publishing it would put the revoked kid back in `keys` on every host.
    path = prepare(tmp_path)
    compromised = selectors.issuer_key_signing().kid
    assert compromised in {key["kid"] for key in json.loads(open(path).read())["payload"]["keys"]}
    services.key_revoke(kid=compromised, reason="laptop stolen")
    for pem in offline_roots["pems"][:2]:
        bundle_tool.main(["sign", "--key", pem, path])
    with pytest.raises(CommandError, match=f"trusts issuer key {compromised}, which is revoked"):
        call_command("bundle_import", path)
    assert TrustBundle.objects.count() == 1
    # A payload prepared after the revocation is accepted and lists the kid as revoked.
    fresh = prepare(tmp_path)
    for pem in offline_roots["pems"][:2]:
        bundle_tool.main(["sign", "--key", pem, fresh])
    call_command("bundle_import", fresh)
    payload = selectors.bundle_latest().document["payload"]
    assert compromised in payload["revoked_kids"]
    assert compromised not in {key["kid"] for key in payload["keys"]}


def test_a_payload_that_drops_a_revoked_kid_is_refused(offline_roots, tmp_path):
    services.issuer_key_rotate()
    old = services.SigningKey.objects.filter(state="retiring").first()
    services.key_revoke(kid=old.kid, reason="leaked")
    path = prepare(tmp_path)
    document = json.loads(open(path).read())
    document["payload"]["revoked_kids"] = []  # an edited payload the roots sign anyway
    open(path, "w").write(json.dumps(document))
    for pem in offline_roots["pems"][:2]:
        bundle_tool.main(["sign", "--key", pem, path])
    with pytest.raises(CommandError, match=f"predates the revocation of key {old.kid}"):
        call_command("bundle_import", path)


def test_revocation_in_hardened_mode_is_recorded_and_flagged(
    offline_roots, django_capture_on_commit_callbacks
):
    from breakglass.audit.models import AuditEvent
    from breakglass.keys.selectors import revocations_unpublished

    with django_capture_on_commit_callbacks(execute=True):
        services.credential_revoke(
            jti="t", expires_at=timezone.now() + timedelta(hours=1), reason="r"
        )
    assert AuditEvent.objects.filter(action="bundle.offline_signing_needed").exists()
    assert services.bundle_payload_build()["revoked_jti"][0]["jti"] == "t"
    assert list(revocations_unpublished().values_list("jti", flat=True)) == ["t"]


def test_import_of_garbage_is_a_clear_error(offline_roots, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CommandError, match="is not valid JSON"):
        call_command("bundle_import", str(bad))
    with pytest.raises(CommandError, match="cannot read"):
        call_command("bundle_import", str(tmp_path / "missing.json"))
    bad.write_text('{"payload": {"type": "other"}, "signatures": []}')
    with pytest.raises(CommandError, match="bundle signatures must be a list"):
        call_command("bundle_import", str(bad))


def test_signer_refuses_a_non_payload(tmp_path, offline_roots):
    other = tmp_path / "other.json"
    other.write_text("{}")
    with pytest.raises(SystemExit, match="not a bundle payload"):
        bundle_tool.main(["sign", "--key", offline_roots["pems"][0], str(other)])


def test_signer_runs_without_django(tmp_path, offline_roots):
    import subprocess
    import sys

    path = prepare(tmp_path)
    code = (
        "import sys; import breakglass.core.signing as b; rc = b.main(sys.argv[1:]); "
        "assert 'django' not in sys.modules, 'imported Django'; sys.exit(rc)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "sign", "--key", offline_roots["pems"][1], path],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "signed bundle version 2" in result.stdout
