from celery import shared_task

from comms.cadence import cadence_check


@shared_task(
    name="comms.tasks.comms_cadence_check",
    acks_late=True,
    soft_time_limit=50,
    time_limit=60,
    ignore_result=True,
)
def comms_cadence_check() -> dict:
    return cadence_check()
