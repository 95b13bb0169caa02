"""Queue items through their life: created and dispatched, claimed, holding a run lock,
finished, reaped when their worker died."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import current_app
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .models import QueueItem

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
STALE_AFTER = timedelta(seconds=90)
LOG_LIMIT = 2000

Status = QueueItem.Status


# Called with every item that finished (and the exception that ended it, if any). Whoever
# wants to react to finished work registers here, so the queue imports none of them.
FinishedHook = Callable[[QueueItem, "BaseException | None"], None]
_finished_hooks: list[FinishedHook] = []


def on_finished(hook: FinishedHook) -> FinishedHook:
    """Register `hook` (once) to be told about every finished item."""
    if hook not in _finished_hooks:
        _finished_hooks.append(hook)
    return hook


def tell_finished(item: QueueItem, exc: BaseException | None) -> None:
    """A hook that fails is logged and never changes the item's outcome."""
    for hook in list(_finished_hooks):
        try:
            hook(item, exc)
        except Exception:
            logger.exception("queue item %s: a finished hook failed", item.pk)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def enqueue(kind: str, *, dispatch: bool = True, requested_by: Any = None, **fields: Any) -> QueueItem:
    """Create a pending item and send its task once the surrounding transaction commits.
    `requested_by`: the user who asked (anyone not logged in, e.g. beat, is stored as None)."""
    if not getattr(requested_by, "is_authenticated", False):
        requested_by = None
    item = QueueItem.objects.create(kind=kind, requested_by=requested_by, **fields)
    if dispatch:
        transaction.on_commit(lambda: dispatch_item(item.pk, kind))
    return item


# The task that runs each kind of item, by its Celery name: the queue sends work without
# importing the packages that do it. The names are those stored in existing deployments.
TASK_NAMES: dict[str, str] = {
    QueueItem.Kind.BACKUP: "jobs.tasks.run_backup",
    QueueItem.Kind.ROTATION: "jobs.tasks.run_rotation",
    QueueItem.Kind.REINDEX: "jobs.tasks.run_reindex",
    QueueItem.Kind.VERIFY: "jobs.tasks.run_verify",
    QueueItem.Kind.RESTORE: "jobs.tasks.run_restore",
    QueueItem.Kind.DOWNLOAD: "jobs.tasks.run_download",
    QueueItem.Kind.DISCOVERY: "jobs.tasks.run_discovery",
}


def enqueue_once(kind: str, *, destination: Any, requested_by: Any = None, **fields: Any) -> QueueItem:
    """The item of `kind` already pending or running for `destination`, else a new one: one
    reindex or integrity check of a destination at a time is enough."""
    with transaction.atomic():
        existing = QueueItem.objects.filter(
            kind=kind, destination=destination, status__in=[Status.PENDING, Status.RUNNING]
        ).first()
        if existing is not None:
            return existing
        return enqueue(kind, destination=destination, requested_by=requested_by, **fields)


def dispatch_item(item_id: int, kind: str) -> None:
    current_app.tasks[TASK_NAMES[kind]].delay(item_id)


def claim(item_id: int) -> QueueItem | None:
    """Take a pending item for this worker; None if it is gone or someone else has it."""
    now = timezone.now()
    taken = QueueItem.objects.filter(pk=item_id, status=Status.PENDING).update(
        status=Status.RUNNING, started=now, heartbeat=now, worker=worker_name()
    )
    if not taken:
        return None
    return QueueItem.objects.get(pk=item_id)


def request_abort(item: QueueItem) -> bool:
    """Abort a pending item at once, or ask a running one to stop. False if already finished."""
    now = timezone.now()
    if QueueItem.objects.filter(pk=item.pk, status=Status.PENDING).update(
        status=Status.ABORTED, finished=now, error="Aborted before it started.", lock=None
    ):
        return True
    return bool(QueueItem.objects.filter(pk=item.pk, status=Status.RUNNING).update(abort_requested=True))


def finish(item: QueueItem, status: str, *, error: str = "", result: dict[str, Any] | None = None) -> None:
    fields: dict[str, Any] = {"status": status, "finished": timezone.now(), "error": error[:10000]}
    if result is not None:
        fields["result"] = result
    if status == Status.COMPLETED:
        fields["progress"] = 100
    QueueItem.objects.filter(pk=item.pk, status=Status.RUNNING).update(**fields, lock=None)
    for name, value in fields.items():
        setattr(item, name, value)
    item.lock = None


def take_lock(item_id: int, key: str) -> bool:
    """Let item `item_id` hold the run lock `key` ("backup:job:7"); False while another
    unfinished item holds it. The lock is the item's unique `lock` column: the database
    refuses a second holder, and finishing the item (or reaping it) lets the lock go.
    Taking a lock the item already holds succeeds."""
    if QueueItem.objects.filter(pk=item_id, lock=key).exists():
        return True
    # A holder that finished without letting go (a row from before the queue cleared locks
    # on every finish) does not block the lock for ever.
    QueueItem.objects.filter(lock=key, status__in=QueueItem.FINISHED).update(lock=None)
    try:
        with transaction.atomic():
            return bool(
                QueueItem.objects.filter(pk=item_id).exclude(status__in=QueueItem.FINISHED).update(lock=key)
            )
    except IntegrityError:
        return False


def reap_stale(now: Any = None) -> int:
    """Mark running items whose worker stopped beating as failed; returns how many."""
    now = now or timezone.now()
    stale = QueueItem.objects.filter(status=Status.RUNNING).filter(
        Q(heartbeat__lt=now - STALE_AFTER) | Q(heartbeat__isnull=True, started__lt=now - STALE_AFTER)
    )
    count = 0
    for item in stale:
        updated = QueueItem.objects.filter(
            pk=item.pk, status=Status.RUNNING, heartbeat=item.heartbeat
        ).update(
            status=Status.FAILED,
            finished=now,
            error="The worker running this item stopped responding (killed or crashed). "
            "Nothing it was writing was committed; run it again.",
            lock=None,
        )
        if updated:
            logger.warning("queue item %s marked failed: worker %s stopped", item.pk, item.worker)
            count += 1
            item.refresh_from_db()
            tell_finished(item, None)
    return count


def redispatch_lost(now: Any = None, older_than: timedelta = timedelta(minutes=5)) -> int:
    """Send again the tasks of items pending for long (a message lost with a broker restart).
    Claiming is conditional, so a duplicate delivery is harmless."""
    now = now or timezone.now()
    count = 0
    for item in QueueItem.objects.filter(status=Status.PENDING, created__lt=now - older_than):
        dispatch_item(item.pk, item.kind)
        count += 1
    return count
