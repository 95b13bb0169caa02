"""Celery tasks: thin. They take ids, re-fetch, and call the services; each is safe to run
twice (claiming an item is a conditional UPDATE)."""

from typing import Any

from celery import Task, shared_task

from destinations.models import Destination

from . import backup, queue
from .models import BackupJob, QueueItem


@shared_task(bind=True, max_retries=None, acks_late=True)
def run_backup(self: Task, item_id: int) -> None:
    taken = backup.take_job(item_id)
    if taken is None:
        return
    if not taken:
        # Another run of this job is in progress: stay pending and look again shortly.
        raise self.retry(countdown=backup.retry_delay())
    queue.run_item(item_id, QueueItem.Kind.BACKUP, backup.run)


@shared_task
def scheduled_backup(job_id: int) -> None:
    job = BackupJob.objects.filter(pk=job_id, enabled=True).select_related("destination").first()
    if job is None or job.destination.disabled:
        return
    backup.queue_run(job)


@shared_task
def scheduled_reindex(destination_id: int) -> None:
    from destinations import reindex

    destination = Destination.objects.filter(pk=destination_id, disabled=False).first()
    if destination is not None:
        reindex.queue_reindex(destination)


@shared_task(acks_late=True)
def run_reindex(item_id: int) -> None:
    from destinations import reindex

    queue.run_item(item_id, QueueItem.Kind.REINDEX, reindex.run)


@shared_task
def scheduled_verify(destination_id: int) -> None:
    from . import verify

    destination = Destination.objects.filter(pk=destination_id, disabled=False).first()
    if destination is not None:
        verify.queue_verify(destination, destination.verify_read_percent)


@shared_task(acks_late=True)
def run_verify(item_id: int) -> None:
    from . import verify

    queue.run_item(item_id, QueueItem.Kind.VERIFY, verify.run)


@shared_task(acks_late=True)
def run_restore(item_id: int) -> None:
    from .restore import runner

    queue.run_item(item_id, QueueItem.Kind.RESTORE, runner.run)


@shared_task(acks_late=True)
def run_download(item_id: int) -> None:
    from .restore import downloads

    queue.run_item(item_id, QueueItem.Kind.DOWNLOAD, downloads.run_download)


@shared_task(acks_late=True)
def run_rotation(item_id: int) -> None:
    queue.run_item(item_id, QueueItem.Kind.ROTATION, backup.run_deletion)


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def sync_lock_marker(snapshot_id: int) -> None:
    from . import snapshots

    snapshots.sync_lock_marker(snapshot_id)


@shared_task
def scheduled_discovery() -> None:
    from . import discovery

    discovery.queue_discovery()


@shared_task(acks_late=True)
def run_discovery(item_id: int) -> None:
    from . import discovery

    queue.run_item(item_id, QueueItem.Kind.DISCOVERY, discovery.run)


@shared_task
def expire_removed_accounts() -> int:
    from . import removed

    return removed.expire()


@shared_task
def reap_stale() -> int:
    return queue.reap_stale()


@shared_task
def redispatch_lost() -> int:
    return queue.redispatch_lost()


@shared_task
def expire_downloads() -> int:
    from .restore import downloads

    return downloads.expire_downloads()


@shared_task
def collect_listing_garbage() -> int:
    from destinations import listing
    from destinations.models import Snapshot

    return listing.collect_garbage(Snapshot.objects.values_list("listing_root", flat=True))


@shared_task(bind=True, max_retries=None, acks_late=True)
def send_notification(self: Task, notification_id: int) -> str:
    """Send one notification; a failure is retried with backoff, then recorded as failed."""
    from . import notifications

    last = self.request.retries + 1 >= notifications.MAX_ATTEMPTS
    outcome = notifications.deliver(notification_id, last_attempt=last)
    if outcome == notifications.RETRY:
        raise self.retry(countdown=notifications.retry_delay(self.request.retries))
    return outcome


@shared_task
def send_held_notifications() -> int:
    from . import notifications

    return notifications.send_held_summaries()


@shared_task
def daily_summary() -> int:
    from . import notifications

    return len(notifications.daily_summary())


TASKS_BY_KIND: dict[str, Any] = {
    QueueItem.Kind.BACKUP: run_backup,
    QueueItem.Kind.REINDEX: run_reindex,
    QueueItem.Kind.VERIFY: run_verify,
    QueueItem.Kind.RESTORE: run_restore,
    QueueItem.Kind.DOWNLOAD: run_download,
    QueueItem.Kind.ROTATION: run_rotation,
    QueueItem.Kind.DISCOVERY: run_discovery,
}
