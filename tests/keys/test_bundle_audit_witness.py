"""Every service a witness: each signed trust bundle carries the audit head at signing
time, so a host's copy of an old bundle proves what the audit log contained then."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from breakglass.audit.models import AuditEvent
from breakglass.audit.services import audit_record
from breakglass.core import MalformedBundle, verify_bundle
from breakglass.core.cli import main as breakglass_cli
from breakglass.keys import selectors, services
from tests.foundation.test_audit_checkpoint_forgery import _forge_by_sql, pg_only


@pytest.fixture(autouse=True)
def _own_checkpoint_file(settings, tmp_path):
    settings.BREAKGLASS_AUDIT_CHECKPOINT_FILE = tmp_path / "checkpoints.jsonl"


def _copy_to_host(tmp_path, name: str) -> str:
    """What a host keeps: the published bundle.json, copied at that moment."""
    path = tmp_path / f"{name}-bundle.json"
    path.write_text(json.dumps(selectors.bundle_latest().document))
    return str(path)


def _publish(django_capture_on_commit_callbacks, reason="test"):
    with django_capture_on_commit_callbacks(execute=True):
        return services.bundle_publish(reason=reason)


def test_a_published_bundle_carries_the_audit_head_at_signing(
    trust, django_capture_on_commit_callbacks
):
    audit_record(action="test.before")
    head = AuditEvent.objects.order_by("-seq").first()
    bundle = _publish(django_capture_on_commit_callbacks)
    assert bundle.document["payload"]["audit_head"] == {"seq": head.seq, "hash": head.hash}
    # The publication's own event comes after the head it signed.
    assert AuditEvent.objects.order_by("-seq").first().seq == head.seq + 1


@pytest.fixture
def signed_after_an_event(trust, django_capture_on_commit_callbacks):
    """A bundle signed once the log has a head (bootstrap's own events join the chain
    when its transaction commits, after that first bundle was signed)."""
    audit_record(action="test.event")
    return _publish(django_capture_on_commit_callbacks)


def test_a_bundle_signed_on_an_empty_log_carries_no_head(trust):
    assert "audit_head" not in selectors.bundle_latest().document["payload"]


def test_breakglass_bundle_verify_prints_the_audit_head(signed_after_an_event, tmp_path, capsys):
    head = selectors.bundle_latest().document["payload"]["audit_head"]
    roots = tmp_path / "roots.json"
    roots.write_text(json.dumps(selectors.roots_export()))
    bundle = _copy_to_host(tmp_path, "web1")
    assert breakglass_cli(["bundle", "verify", "--roots", str(roots), bundle]) == 0
    assert f"audit head at signing: {head['seq']}:{head['hash']}" in capsys.readouterr().out
    assert breakglass_cli(["bundle", "verify", "--roots", str(roots), "--json", bundle]) == 0
    assert json.loads(capsys.readouterr().out)["audit_head"] == head


def test_a_malformed_audit_head_is_refused_by_the_verifier(trust):
    from breakglass.core.signing import bundle_sign

    payload = services.bundle_payload_build()
    payload["audit_head"] = {"seq": 3, "hash": "not-a-hash"}
    document = bundle_sign(payload, services._server_signers())
    with pytest.raises(MalformedBundle, match="audit_head must be"):
        verify_bundle(document, selectors.roots_export())


def test_verify_audit_accepts_witnesses_from_an_honest_log(
    signed_after_an_event, tmp_path, capsys, django_capture_on_commit_callbacks
):
    first = _copy_to_host(tmp_path, "web1")
    audit_record(action="test.more")
    _publish(django_capture_on_commit_callbacks)
    second = _copy_to_host(tmp_path, "db1")
    call_command("verify_audit", witness=[first, second])
    out = capsys.readouterr().out
    assert f"witness {first}: bundle version 2" in out
    assert f"witness {second}: bundle version 3" in out
    assert "audit chain intact" in out


@pg_only
def test_verify_audit_names_the_first_bundle_whose_head_was_rewritten(
    signed_after_an_event, tmp_path, capsys, responder, django_capture_on_commit_callbacks
):
    early = _copy_to_host(tmp_path, "web1")  # signed before rita's emergency
    early_head = selectors.bundle_latest().document["payload"]["audit_head"]["seq"]
    start = AuditEvent.objects.order_by("-seq").first().seq
    audit_record(action="grant.self_issued", actor=responder)
    audit_record(action="ssh_certificate.issued", actor=responder)
    audit_record(action="grant.issued", actor=responder)
    audit_record(action="user.logout", actor=responder)
    _publish(django_capture_on_commit_callbacks)
    late = _copy_to_host(tmp_path, "db1")  # signed after it

    _forge_by_sql(delete_seqs=[start + 1, start + 2, start + 3])
    with pytest.raises(SystemExit) as exited:
        call_command("verify_audit", witness=[early, late], no_checkpoint_file=True)
    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert f"witness {early}: bundle version 2, head #{early_head} present" in captured.out
    assert f"witness {late} (bundle version 3) was signed at audit head" in captured.err
    assert "which the chain no longer contains" in captured.err


def test_a_witness_with_a_forged_head_is_refused(signed_after_an_event, tmp_path):
    path = _copy_to_host(tmp_path, "web1")
    document = json.loads(open(path).read())
    document["payload"]["audit_head"]["seq"] = 1  # edited: the root signatures break
    open(path, "w").write(json.dumps(document))
    with pytest.raises(CommandError, match=f"witness {path} refused: .*does not verify"):
        call_command("verify_audit", witness=[path])


def test_bundle_import_refuses_an_audit_head_the_chain_does_not_contain(trust):
    from breakglass.core.signing import bundle_sign

    payload = services.bundle_payload_build()
    payload["audit_head"] = {"seq": 999, "hash": "a" * 64}
    document = bundle_sign(payload, services._server_signers())
    with pytest.raises(services.BundleImportError, match="audit head #999 is not in"):
        services.bundle_import(document=document)
