"""Celery tasks that keep the queue honest (names as stored in existing beat schedules)."""

from celery import shared_task

from . import items


@shared_task(name="jobs.tasks.reap_stale")
def reap_stale() -> int:
    return items.reap_stale()


@shared_task(name="jobs.tasks.redispatch_lost")
def redispatch_lost() -> int:
    return items.redispatch_lost()
