from celery import shared_task

from breakglass.access.lifecycle import grants_expire


@shared_task(
    name="breakglass.tasks.grants_expire_task",
    acks_late=True,
    soft_time_limit=60,
    time_limit=90,
    ignore_result=True,
)
def grants_expire_task() -> int:
    # Safe to run twice: each grant is claimed with a conditional UPDATE.
    return grants_expire()
