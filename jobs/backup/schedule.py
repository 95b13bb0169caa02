"""A backup job's schedule: its django-celery-beat entry follows the job."""

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from jobs import schedules
from jobs.models import BackupJob


@receiver(post_save, sender=BackupJob)
def job_saved(sender: type, instance: BackupJob, **kwargs: Any) -> None:
    schedules.sync(
        schedules.job_task_name(instance.pk),
        "jobs.tasks.scheduled_backup",
        instance.schedule,
        enabled=instance.enabled,
        args=[instance.pk],
    )


@receiver(post_delete, sender=BackupJob)
def job_deleted(sender: type, instance: BackupJob, **kwargs: Any) -> None:
    schedules.remove(schedules.job_task_name(instance.pk))
