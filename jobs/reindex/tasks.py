"""Celery tasks of reindex runs (names as stored in existing beat schedules)."""

from celery import shared_task

from destinations import listing
from destinations.models import Destination
from jobs import queue
from jobs.models import QueueItem, Snapshot

from . import sync


@shared_task(name="jobs.tasks.scheduled_reindex")
def scheduled_reindex(destination_id: int) -> None:
    destination = Destination.objects.filter(pk=destination_id, disabled=False).first()
    if destination is not None:
        sync.queue_reindex(destination)


@shared_task(name="jobs.tasks.run_reindex", acks_late=True)
def run_reindex(item_id: int) -> None:
    queue.run_item(item_id, QueueItem.Kind.REINDEX, sync.run)


@shared_task(name="jobs.tasks.collect_listing_garbage")
def collect_listing_garbage() -> int:
    return listing.collect_garbage(Snapshot.objects.values_list("listing_root", flat=True))
