"""The events a notification target can ask for (no table: the choices of a JSON list)."""

from django.db import models


class NotificationEvent(models.TextChoices):
    """What a notification target can ask to be told about."""

    BACKUP_FAILED = "backup_failed", "Backup failed"
    BACKUP_PARTIAL = "backup_partial", "Backup partially completed"
    BACKUP_COMPLETED = "backup_completed", "Backup completed"
    RESTORE_COMPLETED = "restore_completed", "Restore completed"
    REINDEX_FAILED = "reindex_failed", "Reindex failed"
    DESTINATION_UNREACHABLE = "destination_unreachable", "Destination unreachable"
    INTEGRITY_PROBLEM = "integrity_problem", "Integrity problem"
    ACCOUNT_REMOVED = "account_removed", "Account removed"
    DAILY_SUMMARY = "daily_summary", "Daily summary"
