from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from destinations.models import Destination

from . import schedules
from .models import BackupJob


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


@receiver(post_save, sender=Destination)
def destination_saved(sender: type, instance: Destination, **kwargs: Any) -> None:
    schedules.sync(
        schedules.reindex_task_name(instance.pk),
        "jobs.tasks.scheduled_reindex",
        instance.reindex_schedule,
        enabled=not instance.disabled,
        args=[instance.pk],
    )
    schedules.sync(
        schedules.verify_task_name(instance.pk),
        "jobs.tasks.scheduled_verify",
        instance.verify_schedule,
        enabled=not instance.disabled,
        args=[instance.pk],
    )


@receiver(post_delete, sender=Destination)
def destination_deleted(sender: type, instance: Destination, **kwargs: Any) -> None:
    schedules.remove(schedules.reindex_task_name(instance.pk))
    schedules.remove(schedules.verify_task_name(instance.pk))


def discovery_schedule(sender: Any, **kwargs: Any) -> None:
    """After migrate: the hourly account discovery exists (an admin's change is kept)."""
    schedules.ensure_discovery_schedule()
