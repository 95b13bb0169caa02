"""Schedules live in django-celery-beat: one PeriodicTask per scheduled job or reindex,
rewritten whenever its owner is saved, removed when it is deleted or unscheduled."""

from __future__ import annotations

import json

from django.conf import settings
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from destinations.validators import parse_cron


def _crontab(expression: str) -> CrontabSchedule:
    parse_cron(expression)  # refuses bad expressions before they reach beat
    minute, hour, day_of_month, month_of_year, day_of_week = expression.split()
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone=settings.TIME_ZONE,
    )
    return schedule


def sync(name: str, task: str, expression: str, *, enabled: bool, args: list[object]) -> None:
    """Make the PeriodicTask called `name` match (or remove it when there is no schedule)."""
    if not expression.strip():
        PeriodicTask.objects.filter(name=name).delete()
        return
    PeriodicTask.objects.update_or_create(
        name=name,
        defaults={
            "task": task,
            "crontab": _crontab(expression),
            "interval": None,
            "args": json.dumps(args),
            "enabled": enabled,
        },
    )


def remove(name: str) -> None:
    PeriodicTask.objects.filter(name=name).delete()


def job_task_name(job_id: int) -> str:
    return f"backup job {job_id}"


def reindex_task_name(destination_id: int) -> str:
    return f"reindex destination {destination_id}"


def periodic_task(name: str) -> PeriodicTask | None:
    return PeriodicTask.objects.filter(name=name).first()
