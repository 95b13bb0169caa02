"""How much work one client may have queued at once.

A client who queues restores and downloads without end fills the workers and the local disk
(prepared downloads) for everyone on the server; a few at a time is enough for any real need.
Admins are not limited.
"""

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from .models import QueueItem

LIMITED_KINDS = (QueueItem.Kind.RESTORE, QueueItem.Kind.DOWNLOAD)
OPEN_STATUSES = (QueueItem.Status.PENDING, QueueItem.Status.RUNNING)


class QueueFull(ValidationError):
    """The client already has as many restores and downloads queued as they may. A
    ValidationError, so that the pages show it like any other refusal; the API answers 429."""


def check_client_queue(user: Any) -> None:
    """Raise QueueFull when `user` (a client) may not queue another restore or download."""
    if user.is_staff:
        return
    # Run inside the transaction that queues the new item: the user's row, locked, makes
    # concurrent requests of one client wait for each other (SQLite serialises writers anyway).
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
    limit = int(settings.CLIENT_QUEUE_LIMIT)
    queued = QueueItem.objects.filter(
        requested_by=user.pk, kind__in=LIMITED_KINDS, status__in=OPEN_STATUSES
    ).count()
    if queued >= limit:
        raise QueueFull(
            f"You already have {queued} restores and downloads queued or running, the most "
            f"allowed at once ({limit}). Wait until one of them has finished, then try again."
        )
