"""Backups as the index knows them: lock state, and keeping the destination's marker in step."""

from __future__ import annotations

from celery import current_app
from django.db import transaction

from destinations.formats import native
from destinations.models import Engine
from destinations.sessions import open_session
from jobs import queue
from jobs.models import QueueItem, Snapshot

# The task writing a backup's LOCKED marker (jobs.backup.tasks), sent by name: the tasks
# import this module, not the other way round.
SYNC_LOCK_MARKER = "jobs.tasks.sync_lock_marker"


def set_locked(snapshot: Snapshot, locked: bool) -> Snapshot:
    """Lock or unlock a backup. A locked backup is never rotated nor chosen as an incremental
    slot. The index changes at once; for native backups a worker also writes (or removes) the
    LOCKED marker on the destination, so the lock survives a rebuild of the index."""
    Snapshot.objects.filter(pk=snapshot.pk).update(locked=locked)
    snapshot.locked = locked
    if snapshot.engine == Engine.NATIVE and not snapshot.destination.read_only:
        transaction.on_commit(lambda: current_app.tasks[SYNC_LOCK_MARKER].delay(snapshot.pk))
    return snapshot


def sync_lock_marker(snapshot_id: int) -> None:
    """Write or remove the LOCKED marker of a native backup to match the index."""
    snapshot = Snapshot.objects.select_related("destination").filter(pk=snapshot_id).first()
    if snapshot is None or snapshot.engine != Engine.NATIVE or snapshot.destination.read_only:
        return
    with open_session(snapshot.destination) as session, session.connection() as conn:
        native.set_locked(conn, snapshot.path, snapshot.locked)


def queue_deletion(snapshot: Snapshot, *, requested_by: object = None) -> object:
    """Delete a backup from its destination and the index, as a queue item."""
    with transaction.atomic():
        return queue.enqueue(
            QueueItem.Kind.ROTATION,
            title=f"delete {snapshot.path}",
            destination=snapshot.destination,
            snapshot=snapshot,
            account=snapshot.account,
            requested_by=requested_by,
        )
