from celery import shared_task

from breakglass.keys import selectors, services


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


@shared_task(
    name="breakglass.keys.tasks.revocations_publish_task",
    acks_late=True,
    soft_time_limit=60,
    time_limit=90,
    ignore_result=True,
)
def revocations_publish_task() -> int | None:
    # The safety net for a revocation whose own publish never ran (its process died
    # between its commit and the publish): normally there is nothing to do.
    if not selectors.revocations_unpublished().exists():
        return None
    bundle = services.revocations_publish()
    return bundle.version if bundle is not None else None
