"""Every schedule of the panel: they live in django-celery-beat, one PeriodicTask per
scheduled backup job, destination reindex and destination integrity check, rewritten whenever
its owner is saved (the receivers at the end of this module), removed when it is deleted or
unscheduled; and the hourly account discovery, made sure of after every migrate."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from destinations.models import Destination
from destinations.validators import parse_cron
from jobs.models import BackupJob


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


def verify_task_name(destination_id: int) -> str:
    return f"verify destination {destination_id}"


def periodic_task(name: str) -> PeriodicTask | None:
    return PeriodicTask.objects.filter(name=name).first()


DISCOVERY_TASK_NAME = "discover accounts"
DISCOVERY_DEFAULT = "17 * * * *"  # hourly, off the top of the hour


def ensure_discovery_schedule() -> None:
    """Create the discovery schedule (hourly) once; after that it is the admin's. Turning it
    off keeps the row, disabled, so it is not created again."""
    if not PeriodicTask.objects.filter(name=DISCOVERY_TASK_NAME).exists():
        set_discovery_schedule(DISCOVERY_DEFAULT)


def discovery_schedule() -> str:
    """The discovery's cron expression, empty when it only runs by hand."""
    task = PeriodicTask.objects.filter(name=DISCOVERY_TASK_NAME).select_related("crontab").first()
    if task is None or not task.enabled or task.crontab is None:
        return ""
    c = task.crontab
    return f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}"


def set_discovery_schedule(expression: str) -> None:
    expression = " ".join(expression.split())
    if not expression:
        PeriodicTask.objects.filter(name=DISCOVERY_TASK_NAME).update(enabled=False)
        return
    sync(DISCOVERY_TASK_NAME, "jobs.tasks.scheduled_discovery", expression, enabled=True, args=[])


# --- the rows that own schedules ----------------------------------------------------------------


@receiver(post_save, sender=BackupJob)
def job_saved(sender: type, instance: BackupJob, **kwargs: Any) -> None:
    sync(
        job_task_name(instance.pk),
        "jobs.tasks.scheduled_backup",
        instance.schedule,
        enabled=instance.enabled,
        args=[instance.pk],
    )


@receiver(post_delete, sender=BackupJob)
def job_deleted(sender: type, instance: BackupJob, **kwargs: Any) -> None:
    remove(job_task_name(instance.pk))


@receiver(post_save, sender=Destination)
def destination_saved(sender: type, instance: Destination, **kwargs: Any) -> None:
    """A destination owns two schedules: its reindex and its integrity check."""
    for name, task, expression in (
        (reindex_task_name(instance.pk), "jobs.tasks.scheduled_reindex", instance.reindex_schedule),
        (verify_task_name(instance.pk), "jobs.tasks.scheduled_verify", instance.verify_schedule),
    ):
        sync(name, task, expression, enabled=not instance.disabled, args=[instance.pk])


@receiver(post_delete, sender=Destination)
def destination_deleted(sender: type, instance: Destination, **kwargs: Any) -> None:
    remove(reindex_task_name(instance.pk))
    remove(verify_task_name(instance.pk))


def after_migrate(sender: Any, **kwargs: Any) -> None:
    """The hourly account discovery exists (an admin's change is kept)."""
    ensure_discovery_schedule()
