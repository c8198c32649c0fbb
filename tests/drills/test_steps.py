"""Each step of an automated drill: the healthy case, and each failure said in words."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from breakglass.access.models import Grant
from breakglass.keys.selectors import published_bundle_path
from breakglass.outbox.models import OutboxMessage
from devkit.factories import user_make
from drills.engine import drill_run_create, drill_run_execute
from drills.models import DrillRun, DrillSinkDelivery

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("autocommit_callbacks")]


def drill(path) -> DrillRun:
    run = drill_run_create(path=path, enqueue=False)
    return drill_run_execute(run_id=run.pk, sync=True)


def step(run: DrillRun, name: str):
    return run.steps.get(name=name)


def test_a_healthy_path_passes_every_step_and_measures_time_to_access(healthy_path):
    run = drill(healthy_path)

    assert run.state == "passed", run.failure_reason
    assert [s.state for s in run.steps.all()] == ["passed"] * 7
    assert run.time_to_access_ms is not None and run.time_to_access_ms < 60_000
    for s in run.steps.all():
        assert s.started_at <= s.finished_at


def test_the_drill_credential_is_a_real_short_lived_drill_grant(healthy_path):
    run = drill(healthy_path)

    grant = Grant.objects.get(pk=run.grant_id)
    assert grant.drill is True
    assert grant.lifetime_minutes <= 5
    assert step(run, "verify").evidence["drill_claim"] is True


def test_reseal_revokes_the_credential_and_the_published_bundle_lists_it(healthy_path):
    run = drill(healthy_path)

    grant = Grant.objects.get(pk=run.grant_id)
    assert grant.state == Grant.State.REVOKED
    published = json.loads(published_bundle_path().read_text())
    assert grant.jti in {entry["jti"] for entry in published["payload"]["revoked_jti"]}


def test_notify_on_use_is_delivered_to_the_drill_sink(healthy_path):
    run = drill(healthy_path)

    assert DrillSinkDelivery.objects.filter(source=f"breakglass.grant:{run.grant_id}").exists()


def test_the_sink_message_is_held_from_the_workers_for_the_notify_step_to_deliver(
    healthy_path, settings
):
    from breakglass.outbox.services import outbox_deliver_one
    from drills.steps import StepContext, step_run

    run = drill_run_create(path=healthy_path, enqueue=False)
    ctx = StepContext(run=run, path=healthy_path)
    assert step_run("issue", ctx)[0]
    [message] = OutboxMessage.objects.filter(source=f"breakglass.grant:{ctx.grant.pk}")
    assert message.next_attempt_at >= timezone.now() + timedelta(
        seconds=settings.DRILLS_NOTIFY_HOLD_SECONDS - 5
    )
    assert outbox_deliver_one(message_id=message.pk) == "skipped"  # what a worker would get

    ok, evidence, reason = step_run("notify", ctx)  # no waiting: it delivers it itself
    assert ok, reason
    message.refresh_from_db()
    assert (message.state, message.attempts) == ("delivered", 1)
    assert evidence == {"source": message.source, "messages": 1, "delivered": 1}


def test_a_human_drill_leaves_its_sink_message_to_the_workers(healthy_path):
    from drills.steps import StepContext, step_run

    run = drill_run_create(path=healthy_path, enqueue=False)
    ctx = StepContext(run=run, path=healthy_path, delivers_notify=False)
    before = timezone.now()
    assert step_run("issue", ctx)[0]
    [message] = OutboxMessage.objects.filter(source=f"breakglass.grant:{ctx.grant.pk}")
    assert message.next_attempt_at <= before + timedelta(seconds=5)


def test_an_automated_run_holds_a_one_minute_credential_a_probed_one_the_ceiling(
    healthy_path, settings
):
    run = drill(healthy_path)
    assert Grant.objects.get(pk=run.grant_id).lifetime_minutes == 1

    from drills.steps import drill_credential_minutes

    healthy_path.probe_url = "http://127.0.0.1:9/probe"
    assert drill_credential_minutes(run=run, path=healthy_path) is None  # the ceiling
    run.kind = "human"
    healthy_path.probe_url = ""
    assert drill_credential_minutes(run=run, path=healthy_path) is None


def test_a_path_that_depends_on_what_it_protects_fails_with_the_chain(flawed_path):
    run = drill(flawed_path)

    assert run.state == "failed"
    reason = step(run, "dependency").reason
    assert "sso -> chat -> sso" in reason
    assert "In an outage of sso this path cannot work" in reason
    assert run.failure_reason.startswith("Path does not depend on what it protects")


def test_an_expired_bundle_fails_verification_and_freshness(healthy_path):
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        run = drill(healthy_path)

    assert run.state == "failed"
    assert "published bundle" in step(run, "verify").reason
    assert "expired" in step(run, "freshness").reason


def test_a_bundle_close_to_expiry_fails_freshness_only(healthy_path, settings):
    settings.DRILLS_BUNDLE_MARGIN_HOURS = 2
    with time_machine.travel(timezone.now() + timedelta(hours=23)):
        run = drill(healthy_path)

    assert step(run, "verify").state == "passed"
    assert step(run, "freshness").state == "failed"
    assert "expires in" in step(run, "freshness").reason


def test_an_issuer_key_about_to_expire_fails_freshness(healthy_path, settings):
    from breakglass.keys.models import SigningKey

    SigningKey.objects.filter(purpose=SigningKey.Purpose.ISSUER).update(
        not_after=timezone.now() + timedelta(days=3)
    )
    run = drill(healthy_path)

    assert step(run, "freshness").state == "failed"
    assert "issuer key" in step(run, "freshness").reason


def test_an_approver_pool_smaller_than_k_fails_and_names_who_is_unusable(healthy_path, approvers):
    TOTPDevice.objects.filter(user=approvers[1]).delete()
    disabled = user_make("carl-approver", role_names=("approver",))
    disabled.is_active = False
    disabled.save()

    run = drill(healthy_path)

    reason = step(run, "approvers").reason
    assert run.state == "failed"
    assert "needs 2 approvers but only 1" in reason
    assert "bea-approver: no confirmed OTP device" in reason
    assert "carl-approver: account disabled" in reason


def test_a_notification_that_is_not_delivered_fails_notify(healthy_path, settings):
    settings.DRILLS_SINK_ENABLED = False

    run = drill(healthy_path)

    reason = step(run, "notify").reason
    assert run.state == "failed"
    assert "was not delivered" in reason and "drill sink is switched off" in reason
    assert OutboxMessage.objects.get(source=f"breakglass.grant:{run.grant_id}").state == "dead"


def test_an_ssh_path_gets_a_certificate_from_its_ca_and_passes(ssh_path):
    run = drill(ssh_path)

    assert run.state == "passed", run.failure_reason
    assert step(run, "verify").evidence["drill_claim"] is True


def test_later_steps_are_skipped_not_faked_when_issuing_fails(healthy_path, monkeypatch):
    def refuse(**kwargs):
        raise RuntimeError("issuer key unavailable")

    monkeypatch.setattr("drills.steps.grant_issue_drill", refuse)

    run = drill(healthy_path)

    assert "issuer key unavailable" in step(run, "issue").reason
    assert step(run, "verify").state == "skipped"
    assert step(run, "reseal").state == "skipped"
    assert run.state == "failed"


def test_a_run_over_its_time_to_access_target_fails(healthy_path):
    run = drill_run_create(path=healthy_path, enqueue=False)
    DrillRun.objects.filter(pk=run.pk).update(target_seconds=0)

    run = drill_run_execute(run_id=run.pk, sync=True)

    assert run.state == "failed"
    assert "over the target of 0s" in run.failure_reason


# --- HTTP probe: the drill credential presented to the real target ------------------------


def probed(path, url):
    path.probe_url = url
    path.save(update_fields=["probe_url"])
    return path


def test_a_path_without_a_probe_has_no_probe_steps(healthy_path):
    names = list(drill(healthy_path).steps.values_list("name", flat=True))
    assert "http_probe" not in names and "http_reseal" not in names


def test_the_real_target_accepts_the_drill_token_then_refuses_it_after_the_reseal(
    healthy_path, probe_target
):
    from drills.reports import report_build

    probed(healthy_path, probe_target(published_bundle_path()))
    run = drill(healthy_path)

    assert run.state == "passed", run.failure_reason
    names = list(run.steps.values_list("name", flat=True))
    assert names.index("verify") < names.index("http_probe") < names.index("reseal")
    assert names[-1] == "http_reseal"
    assert step(run, "http_probe").evidence["status"] == 204
    resealed = step(run, "http_reseal").evidence
    assert (resealed["status"], resealed["error"]) == (401, "revoked")
    assert resealed["propagation_ms"] >= 0
    row = next(r for r in report_build(days=7)["paths"] if r["path"] == healthy_path.slug)
    assert row["probe"] is True
    assert row["propagation_last_ms"] == resealed["propagation_ms"]


def test_a_target_that_refuses_drills_fails_the_probe_with_the_reason(healthy_path, probe_target):
    probed(healthy_path, probe_target(published_bundle_path(), allow_drill=False))
    run = drill(healthy_path)

    assert run.state == "failed"
    probe = step(run, "http_probe")
    assert probe.state == "failed"
    assert "answered 401 (drill_not_allowed)" in probe.reason
    assert "--allow-drill" in probe.reason


def test_a_target_that_never_syncs_fails_the_reseal_probe(
    healthy_path, probe_target, settings, tmp_path
):
    stale_copy = tmp_path / "host-bundle.json"
    stale_copy.write_bytes(published_bundle_path().read_bytes())  # the host never syncs again
    settings.DRILLS_PROBE_PROPAGATION_SECONDS = 0
    probed(healthy_path, probe_target(stale_copy))
    run = drill(healthy_path)

    assert step(run, "http_probe").state == "passed"
    reseal = step(run, "http_reseal")
    assert reseal.state == "failed"
    assert "still answered 204 instead of refusing it" in reseal.reason
    assert "has not synced the new bundle" in reseal.reason
    assert run.state == "failed"


def test_an_unreachable_probe_target_fails_in_words(healthy_path):
    from tests.integrations.hosts import free_port

    probed(healthy_path, f"http://127.0.0.1:{free_port()}/probe")
    probe = step(drill(healthy_path), "http_probe")
    assert probe.state == "failed"
    assert "could not be reached" in probe.reason


def test_a_refusal_for_another_reason_is_not_counted_as_propagation(healthy_path, probe_target):
    """The target's clock jumps past the drill token's expiry right after the probe got in:
    its refusal then says `expired`, which proves nothing about the revocation."""
    late = {"by": 0}
    probed(
        healthy_path,
        probe_target(published_bundle_path(), clock=lambda: time.time() + late["by"]),
    )

    def after(step_done):
        if step_done.name == "http_probe":
            late["by"] = 20 * 60

    created = drill_run_create(path=healthy_path, enqueue=False)
    run = drill_run_execute(run_id=created.pk, sync=True, on_step=after)

    assert step(run, "http_probe").state == "passed"
    reseal = step(run, "http_reseal")
    assert reseal.state == "failed"
    assert "for another reason (expired)" in reseal.reason
    assert "propagation_ms" not in reseal.evidence


def test_without_acceptance_there_is_no_refusal_to_wait_for(healthy_path, probe_target):
    probed(healthy_path, probe_target(published_bundle_path(), audience="vpn"))
    run = drill(healthy_path)

    assert "answered 401 (wrong_audience)" in step(run, "http_probe").reason
    reseal = step(run, "http_reseal")
    assert reseal.state == "skipped"
    assert "never accepted" in reseal.reason
