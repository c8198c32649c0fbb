"""The chain's head, recorded outside the database, catches events cut off the end."""

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from breakglass.audit.models import AuditEvent
from breakglass.audit.selectors import audit_checkpoint_latest
from breakglass.audit.services import audit_checkpoint_record, audit_record
from breakglass.audit.tasks import audit_checkpoint_task
from tests.foundation.test_audit_verify import audit_log_emptied, owner_tampering

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def checkpoint_file(settings, tmp_path):
    settings.BREAKGLASS_AUDIT_CHECKPOINT_FILE = tmp_path / "checkpoints.jsonl"
    return settings.BREAKGLASS_AUDIT_CHECKPOINT_FILE


def test_an_empty_log_records_nothing(checkpoint_file):
    assert audit_checkpoint_record() is None
    assert not checkpoint_file.exists()


def test_the_head_is_appended_once_per_change(checkpoint_file):
    first = audit_record(action="test.one")
    assert audit_checkpoint_record() == (1, first.hash)
    audit_checkpoint_task()  # unchanged head: no new line
    second = audit_record(action="test.two")
    audit_checkpoint_record()
    assert len(checkpoint_file.read_text().splitlines()) == 2
    assert audit_checkpoint_latest() == (2, second.hash)


def test_a_torn_last_line_falls_back_to_the_one_before(checkpoint_file):
    event = audit_record(action="test.one")
    audit_checkpoint_record()
    with open(checkpoint_file, "ab") as fh:
        fh.write(b'{"seq":2,"ha')  # the host crashed mid-write
    assert audit_checkpoint_latest() == (1, event.hash)


def test_verify_audit_uses_the_recorded_head_to_catch_a_cut_off_tail(capsys):
    for n in range(3):
        audit_record(action="test.step", data={"n": n})
    audit_checkpoint_record()
    call_command("verify_audit")
    assert "checking against checkpoint #3" in capsys.readouterr().out
    with owner_tampering():
        AuditEvent.objects.filter(seq=3).delete()
    with pytest.raises(SystemExit) as exited:
        call_command("verify_audit")
    assert exited.value.code == 1
    assert "event 3: missing: the log ends at event 2" in capsys.readouterr().err
    call_command("verify_audit", no_checkpoint_file=True)  # the chain alone still links


def test_the_scheduler_records_the_head_every_five_minutes():
    entry = PeriodicTask.objects.get(task="breakglass.audit.tasks.audit_checkpoint_task")
    assert (entry.enabled, entry.interval.every, entry.interval.period) == (True, 300, "seconds")


def test_the_console_checks_the_recorded_head(as_user, administrator):
    audit_log_emptied()
    audit_record(action="test.one")
    audit_record(action="test.two")
    audit_checkpoint_record()
    with owner_tampering():
        AuditEvent.objects.filter(seq=2).delete()
    body = as_user(administrator).get("/audit/").content.decode()
    assert "Chain broken" in body and "event #2" in body
