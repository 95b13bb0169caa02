"""Celery tasks of notifications (names as stored in existing beat schedules)."""

from celery import Task, shared_task

from . import events


@shared_task(name=events.SEND_NOTIFICATION, bind=True, max_retries=None, acks_late=True)
def send_notification(self: Task, notification_id: int) -> str:
    """Send one notification; a failure is retried with backoff, then recorded as failed."""
    last = self.request.retries + 1 >= events.MAX_ATTEMPTS
    outcome = events.deliver(notification_id, last_attempt=last)
    if outcome == events.RETRY:
        raise self.retry(countdown=events.retry_delay(self.request.retries))
    return outcome


@shared_task(name="jobs.tasks.send_held_notifications")
def send_held_notifications() -> int:
    return events.send_held_summaries()


@shared_task(name="jobs.tasks.daily_summary")
def daily_summary() -> int:
    return len(events.daily_summary())
