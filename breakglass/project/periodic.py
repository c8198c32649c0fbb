"""Declare periodic tasks in django-celery-beat's tables, where operators can see and edit them.

The table of periodic tasks is `breakglass/project/schedules.py`; `periodic_ensure`
creates one entry once and never overwrites what an operator changed afterwards.
"""

from __future__ import annotations


def periodic_ensure(
    *,
    name: str,
    task: str,
    every_seconds: int | None = None,
    cron: str | None = None,
    enabled: bool = True,
    kwargs: dict | None = None,
):
    """Create the named periodic task if it does not exist. `cron` is "m h dom mon dow"."""
    import json

    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    existing = PeriodicTask.objects.filter(name=name).first()
    if existing is not None:
        return existing
    fields = {"task": task, "enabled": enabled, "kwargs": json.dumps(kwargs or {})}
    if every_seconds is not None:
        fields["interval"], _ = IntervalSchedule.objects.get_or_create(
            every=every_seconds, period=IntervalSchedule.SECONDS
        )
    elif cron is not None:
        fields["crontab"] = crontab_for(cron)
    else:
        raise ValueError("periodic_ensure needs every_seconds or cron")
    return PeriodicTask.objects.create(name=name, **fields)


def crontab_for(cron: str):
    """The (shared) CrontabSchedule row for "m h dom mon dow" in UTC.

    Raises ValueError naming the problem when the expression is not five valid cron
    fields, so a bad schedule is refused when it is saved, not when beat trips over it.
    """
    from celery.schedules import crontab
    from django_celery_beat.models import CrontabSchedule

    parts = (cron or "").split()
    if len(parts) != 5:
        raise ValueError(f"Schedule {cron!r}: expected five cron fields 'm h dom mon dow'")
    minute, hour, day_of_month, month_of_year, day_of_week = parts
    try:
        crontab(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=day_of_week,
        )
    except ValueError as exc:
        raise ValueError(f"Schedule {cron!r}: {exc}") from None
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone="UTC",
    )
    return schedule
