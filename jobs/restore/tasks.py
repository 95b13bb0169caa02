"""Celery tasks of restores and downloads (names as stored in existing deployments)."""

from celery import shared_task

from jobs import queue
from jobs.models import QueueItem

from . import downloads, runner


@shared_task(name="jobs.tasks.run_restore", acks_late=True)
def run_restore(item_id: int) -> None:
    queue.run_item(item_id, QueueItem.Kind.RESTORE, runner.run)


@shared_task(name="jobs.tasks.run_download", acks_late=True)
def run_download(item_id: int) -> None:
    queue.run_item(item_id, QueueItem.Kind.DOWNLOAD, downloads.run_download)


@shared_task(name="jobs.tasks.expire_downloads")
def expire_downloads() -> int:
    return downloads.expire_downloads()
