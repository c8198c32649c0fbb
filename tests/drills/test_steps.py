"""Each step of an automated drill: the healthy case, and each failure said in words."""

from __future__ import annotations

import json
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
