"""The jobs app's JSON API, one module per resource; this module lists the view sets that
`backupsite.api_urls` registers."""

from .accounts import AccountViewSet, BackupJobViewSet
from .backups import SnapshotViewSet
from .clients import ClientViewSet
from .destinations import DestinationViewSet
from .notifications import NotificationTargetViewSet
from .queue import QueueItemViewSet

__all__ = [
    "AccountViewSet",
    "BackupJobViewSet",
    "ClientViewSet",
    "DestinationViewSet",
    "NotificationTargetViewSet",
    "QueueItemViewSet",
    "SnapshotViewSet",
]
