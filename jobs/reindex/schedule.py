"""A destination's reindex schedule: its django-celery-beat entry follows the destination."""

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from destinations.models import Destination
from jobs import schedules


@receiver(post_save, sender=Destination)
def destination_saved(sender: type, instance: Destination, **kwargs: Any) -> None:
    schedules.sync(
        schedules.reindex_task_name(instance.pk),
        "jobs.tasks.scheduled_reindex",
        instance.reindex_schedule,
        enabled=not instance.disabled,
        args=[instance.pk],
    )


@receiver(post_delete, sender=Destination)
def destination_deleted(sender: type, instance: Destination, **kwargs: Any) -> None:
    schedules.remove(schedules.reindex_task_name(instance.pk))
