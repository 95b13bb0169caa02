"""The queue's one table. Its references to the work (job, destination, account, backup) are
lazy ("app.Model" strings): the queue layer imports none of the modules above it."""

from django.conf import settings
from django.db import models


class QueueItem(models.Model):
    """The single truth about one piece of background work; tasks write it, pages read it."""

    class Kind(models.TextChoices):
        BACKUP = "backup", "Backup"
        ROTATION = "rotation", "Rotation"
        REINDEX = "reindex", "Reindex"
        VERIFY = "verify", "Integrity check"
        RESTORE = "restore", "Restore"
        DOWNLOAD = "download", "Download"
        DISCOVERY = "discovery", "Account discovery"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        PARTIAL = "partial", "Partially completed"
        FAILED = "failed", "Failed"
        ABORTED = "aborted", "Aborted"

    FINISHED = (Status.COMPLETED, Status.PARTIAL, Status.FAILED, Status.ABORTED)

    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    title = models.CharField(max_length=200, blank=True)
    job = models.ForeignKey(
        "jobs.BackupJob", on_delete=models.SET_NULL, null=True, blank=True, related_name="queue_items"
    )
    destination = models.ForeignKey(
        "destinations.Destination",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="queue_items",
    )
    account = models.ForeignKey(
        "jobs.Account", on_delete=models.SET_NULL, null=True, blank=True, related_name="queue_items"
    )
    snapshot = models.ForeignKey(
        "jobs.Snapshot", on_delete=models.SET_NULL, null=True, blank=True, related_name="queue_items"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="queue_items"
    )
    params = models.JSONField(default=dict, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)
    files_done = models.BigIntegerField(default=0)
    files_total = models.BigIntegerField(default=0)
    # The part of bytes_done/files_done an incremental run kept without sending it again.
    bytes_unchanged = models.BigIntegerField(default=0)
    files_unchanged = models.BigIntegerField(default=0)
    log = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    abort_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    # The run lock this item holds ("backup:job:7", "reindex:destination:3"): unique, so two
    # items never hold one lock, and cleared by the queue whenever the item finishes.
    lock = models.CharField(max_length=100, null=True, blank=True, unique=True, editable=False)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED
