"""Celery tasks of backup runs and rotation: thin, they take ids and call the services. Names
are the ones existing deployments store in their beat schedules."""

from celery import Task, shared_task

from jobs import queue
from jobs.backup import cycle, removed, snapshots
from jobs.models import BackupJob, QueueItem


@shared_task(name="jobs.tasks.run_backup", bind=True, max_retries=None, acks_late=True)
def run_backup(self: Task, item_id: int) -> None:
    taken = cycle.take_job(item_id)
    if taken is None:
        return
    if not taken:
        # Another run of this job is in progress: stay pending and look again shortly.
        raise self.retry(countdown=cycle.retry_delay())
    queue.run_item(item_id, QueueItem.Kind.BACKUP, cycle.run)


@shared_task(name="jobs.tasks.scheduled_backup")
def scheduled_backup(job_id: int) -> None:
    job = BackupJob.objects.filter(pk=job_id, enabled=True).select_related("destination").first()
    if job is None or job.destination.disabled:
        return
    cycle.queue_run(job)


@shared_task(name="jobs.tasks.run_rotation", acks_late=True)
def run_rotation(item_id: int) -> None:
    queue.run_item(item_id, QueueItem.Kind.ROTATION, cycle.run_deletion)


@shared_task(name=snapshots.SYNC_LOCK_MARKER, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def sync_lock_marker(snapshot_id: int) -> None:
    snapshots.sync_lock_marker(snapshot_id)


@shared_task(name="jobs.tasks.expire_removed_accounts")
def expire_removed_accounts() -> int:
    return removed.expire()
