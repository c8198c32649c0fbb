from celery import shared_task

from breakglass.audit.services import audit_checkpoint_record


@shared_task(
    name="breakglass.audit.tasks.audit_checkpoint_task",
    soft_time_limit=60,
    time_limit=90,
    ignore_result=True,
)
def audit_checkpoint_task() -> None:
    audit_checkpoint_record()
