from celery import shared_task

from breakglass.outbox.services import outbox_deliver_many, outbox_deliver_one, outbox_sweep


@shared_task(
    name="breakglass.outbox.tasks.outbox_deliver",
    acks_late=True,
    soft_time_limit=60,
    time_limit=90,
    ignore_result=True,
)
def outbox_deliver(message_id: int) -> str:
    # Retries are driven by the row (next_attempt_at + the sweep), not by Celery, so a
    # lost retry message cannot lose a delivery. Kept for messages queued before
    # outbox_deliver_batch existed.
    return outbox_deliver_one(message_id=message_id)


@shared_task(
    name="breakglass.outbox.tasks.outbox_deliver_batch",
    acks_late=True,
    soft_time_limit=300,
    time_limit=330,
    ignore_result=True,
)
def outbox_deliver_batch(message_ids: list[int]) -> list[str]:
    """All the rows one transaction (or one sweep chunk) queued, claimed together by one
    conditional UPDATE; a row another worker has, or one already delivered, is skipped."""
    states = outbox_deliver_many(message_ids=message_ids)
    return [states[int(message_id)] for message_id in message_ids]


@shared_task(
    name="breakglass.outbox.tasks.outbox_sweep_task",
    acks_late=True,
    soft_time_limit=120,
    time_limit=150,
    ignore_result=True,
)
def outbox_sweep_task() -> int:
    return outbox_sweep()
