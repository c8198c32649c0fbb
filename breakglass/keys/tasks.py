from celery import shared_task

from breakglass.keys import services


@shared_task(
    name="breakglass.keys.tasks.bundle_refresh",
    acks_late=True,
    soft_time_limit=60,
    time_limit=90,
    ignore_result=True,
)
def bundle_refresh() -> int | None:
    # Safe to run twice: the service republishes only when the bundle is due, under a lock.
    bundle = services.bundle_refresh()
    return bundle.version if bundle is not None else None
