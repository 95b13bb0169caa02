"""Celery tasks of integrity checks (names as stored in existing beat schedules)."""

from celery import shared_task

from destinations.models import Destination
from jobs import queue
from jobs.models import QueueItem
from jobs.verify import check


@shared_task(name="jobs.tasks.scheduled_verify")
def scheduled_verify(destination_id: int) -> None:
    destination = Destination.objects.filter(pk=destination_id, disabled=False).first()
    if destination is not None:
        check.queue_verify(destination, destination.verify_read_percent)


@shared_task(name="jobs.tasks.run_verify", acks_late=True)
def run_verify(item_id: int) -> None:
    queue.run_item(item_id, QueueItem.Kind.VERIFY, check.run)
