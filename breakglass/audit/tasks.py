import logging

from celery import shared_task

from breakglass.audit.services import CheckpointRefused, audit_checkpoint_record

log = logging.getLogger(__name__)


@shared_task(
    name="breakglass.audit.tasks.audit_checkpoint_task",
    soft_time_limit=60,
    time_limit=90,
    ignore_result=True,
)
def audit_checkpoint_task() -> None:
    try:
        audit_checkpoint_record()
    except CheckpointRefused as exc:
        # Expected refusal: the alarm is already in the chain and the outbox.
        log.error("%s", exc)
