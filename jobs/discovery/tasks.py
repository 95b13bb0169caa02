"""Celery tasks of account discovery (names as stored in existing beat schedules)."""

from celery import shared_task

from jobs import queue
from jobs.discovery import accounts
from jobs.models import QueueItem


@shared_task(name="jobs.tasks.scheduled_discovery")
def scheduled_discovery() -> None:
    accounts.queue_discovery()


@shared_task(name="jobs.tasks.run_discovery", acks_late=True)
def run_discovery(item_id: int) -> None:
    queue.run_item(item_id, QueueItem.Kind.DISCOVERY, accounts.run)
