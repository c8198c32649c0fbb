"""Every periodic task, in one table, written into django-celery-beat's tables after
`migrate` by one hook (`schedules_ensure`, connected in OutboxConfig.ready).

Names and task names are the ones earlier releases created, so existing rows are found
and kept: an entry is created once and never overwritten, so what an operator changed in
the admin (interval, enabled) survives every deploy. Task names are pinned with
`@shared_task(name=...)`; renaming one here orphans the stored row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from breakglass.project.periodic import periodic_ensure


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    every_seconds: int | None = None
    cron: str | None = None  # "m h dom mon dow", UTC
    kwargs: dict = field(default_factory=dict)


SCHEDULES: tuple[Schedule, ...] = (
    Schedule(
        name="outbox: sweep undelivered messages",
        task="breakglass.outbox.tasks.outbox_sweep_task",
        every_seconds=30,
    ),
    Schedule(
        name="access: expire stale requests and grants",
        task="breakglass.tasks.grants_expire_task",
        every_seconds=60,
    ),
    Schedule(
        name="keys: refresh the trust bundle before it expires",
        task="breakglass.keys.tasks.bundle_refresh",
        every_seconds=15 * 60,
    ),
    Schedule(
        name="keys: publish revocations a crash left unpublished",
        task="breakglass.keys.tasks.revocations_publish_task",
        every_seconds=60,
    ),
    Schedule(
        name="audit: record the chain head outside the database",
        task="breakglass.audit.tasks.audit_checkpoint_task",
        every_seconds=300,
    ),
    Schedule(
        name="comms: update cadence reminders and escalation",
        task="comms.tasks.comms_cadence_check",
        every_seconds=60,
    ),
    Schedule(
        name="drills: recover lost runs and pump game days",
        task="drills.tasks.drill_runs_reap_task",
        # With 20 s leases, a dead worker's run is taken over within about 30 s.
        every_seconds=10,
    ),
    Schedule(
        name="drills: weekly report",
        task="drills.tasks.drill_report_send_task",
        cron="0 7 * * 1",
        kwargs={"days": 7},
    ),
)


def schedules_ensure(sender=None, **kwargs) -> None:
    """Create each schedule in SCHEDULES that does not exist yet (a post_migrate hook)."""
    for schedule in SCHEDULES:
        periodic_ensure(
            name=schedule.name,
            task=schedule.task,
            every_seconds=schedule.every_seconds,
            cron=schedule.cron,
            kwargs=schedule.kwargs,
        )
