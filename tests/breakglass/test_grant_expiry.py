"""grants_expire: requests nobody approved in time, and grants past their lifetime."""

from datetime import timedelta

import time_machine
from django.utils import timezone

from breakglass.access.credentials import grant_credential
from breakglass.access.grants import grant_request, grant_self_issue
from breakglass.access.lifecycle import grants_expire
from breakglass.access.models import Grant
from breakglass.access.tasks import grants_expire_task
from breakglass.audit.models import AuditEvent


def test_a_request_expires_after_its_ttl(sso_path, responder):
    grant = grant_request(path=sso_path, requester=responder, reason="x")
    with time_machine.travel(timezone.now() + timedelta(minutes=29)):
        assert grants_expire() == 0
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        assert grants_expire() == 1
    grant.refresh_from_db()
    assert grant.state == Grant.State.EXPIRED
    assert AuditEvent.objects.filter(action="grant.request_expired").count() == 1


def test_an_issued_grant_expires_on_its_own_and_hides_its_credential(sso_path, responder):
    grant, _ = grant_self_issue(
        path=sso_path,
        requester=responder,
        reason="x",
        confirmation="sso-backup",
        lifetime_minutes=10,
    )
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert grants_expire_task() == 1
        assert grants_expire() == 0  # safe to run twice
    grant.refresh_from_db()
    assert grant.state == Grant.State.EXPIRED
    assert grant_credential(grant=grant, user=responder) is None
    assert AuditEvent.objects.filter(action="grant.expired").count() == 1


def test_the_sweep_is_registered_as_a_periodic_task(db):
    from django_celery_beat.models import PeriodicTask

    assert PeriodicTask.objects.filter(task="breakglass.tasks.grants_expire_task").exists()
