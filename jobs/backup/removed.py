"""Accounts that vanished from the server: their backups stay for a while, then go.

Discovery sets `removed_at`; for BACKUPSITE_REMOVED_ACCOUNT_RETENTION_DAYS (default 30) after
that nothing changes, so an account removed by mistake can still be restored. After the grace
period each of its backups that Backupsite wrote is deleted through an ordinary deletion queue
item (visible, logged, one per backup). Locked backups, backups cPanel wrote, and backups on
read-only or disabled destinations are never deleted; the account row stays (removed) for the
history of the queue. 0 days: keep them forever.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from destinations.models import Engine
from jobs.backup import snapshots
from jobs.models import Account, QueueItem, Snapshot


def expired_backups(now: Any = None) -> list[Snapshot]:
    days = settings.REMOVED_ACCOUNT_RETENTION_DAYS
    if not days:
        return []
    cutoff = (now or timezone.now()) - timedelta(days=days)
    accounts = Account.objects.filter(removed_at__lt=cutoff)
    busy = QueueItem.objects.filter(
        kind=QueueItem.Kind.ROTATION, status__in=[QueueItem.Status.PENDING, QueueItem.Status.RUNNING]
    ).values("snapshot_id")
    return list(
        Snapshot.objects.filter(
            account__in=accounts,
            engine=Engine.NATIVE,
            locked=False,
            state=Snapshot.State.COMPLETE,
            destination__read_only=False,
            destination__disabled=False,
        )
        .exclude(pk__in=busy)
        .select_related("destination", "account")
    )


def expire(now: Any = None) -> int:
    """Queue the deletion of every backup whose account was removed longer ago than the
    retention allows; returns how many were queued."""
    found = expired_backups(now)
    for snapshot in found:
        snapshots.queue_deletion(snapshot)
    return len(found)
