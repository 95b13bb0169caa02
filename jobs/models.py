import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from destinations.models import Destination, Engine
from destinations.validators import validate_cron

from .ownership import Owners
from .validators import validate_database_names, validate_excludes, validate_home, validate_username


class Account(models.Model):
    """A hosting account on this server, or one only found in backups (`home` empty)."""

    username = models.CharField(max_length=32, unique=True, validators=[validate_username])
    home = models.CharField(
        max_length=255,
        blank=True,
        validators=[validate_home],
        help_text="Absolute path of the home folder (mail included), e.g. /home/bob.",
    )
    databases = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_database_names],
        help_text="MySQL/MariaDB databases to back up. Empty: every database named USERNAME_*.",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="accounts",
        help_text="The client who may browse and restore this account's backups.",
    )
    discovered = models.BooleanField(
        default=False, help_text="Found in backups on a destination, not set up on this server."
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return self.username

    def clean(self) -> None:
        self.home = self.home.rstrip("/") if self.home != "/" else self.home
        if self.username and isinstance(self.databases, list):
            owners = Account.owners(self)
            foreign = [
                owners.why_not_database(self.username, name)
                for name in self.databases
                if isinstance(name, str) and not owners.owns_database(self.username, name)
            ]
            if foreign:
                raise ValidationError(
                    {"databases": [f"{reason}; it cannot be listed here." for reason in foreign]}
                )

    @classmethod
    def owners(cls, candidate: "Account | None" = None) -> Owners:
        """The ownership rule's view of every account (`candidate`, unsaved or edited, as it is
        now instead of as stored)."""
        rows = cls.objects.all()
        if candidate is not None and candidate.pk is not None:
            rows = rows.exclude(pk=candidate.pk)
        accounts = {
            username: list(listed or []) for username, listed in rows.values_list("username", "databases")
        }
        if candidate is not None and candidate.username:
            accounts[candidate.username] = [str(n) for n in candidate.databases or []]
        return Owners.of(accounts, accounts)

    def taken_over(self) -> list[tuple[str, str]]:
        """(database, account) for databases other accounts list that this account now owns."""
        owners = Account.owners()
        return sorted(
            (str(name), username)
            for username, listed in Account.objects.exclude(pk=self.pk).values_list("username", "databases")
            for name in listed or []
            if owners.database_owner(str(name)) == self.username
        )


class BackupJob(models.Model):
    class Type(models.TextChoices):
        FULL = "full", "Full"
        INCREMENTAL = "incremental", "Incremental"

    # What an admin sets, in the order the API shows it.
    SETTINGS = (
        "name",
        "destination",
        "accounts",
        "type",
        "retention",
        "compression",
        "include_home",
        "include_databases",
        "excludes",
        "schedule",
        "enabled",
    )

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=80, unique=True)
    destination = models.ForeignKey(Destination, on_delete=models.PROTECT, related_name="jobs")
    accounts = models.ManyToManyField(Account, related_name="jobs")
    type = models.CharField(
        max_length=12,
        choices=Type.choices,
        default=Type.INCREMENTAL,
        help_text="Full: every run writes a new complete backup. Incremental: after the first N "
        "full backups, each run pushes only the changes onto the oldest one.",
    )
    retention = models.PositiveSmallIntegerField(
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(99)],
        help_text="How many points in time to keep (1-99). Locked backups do not count.",
    )
    compression = models.BooleanField(
        default=True, help_text="Compress with zstd (incompressible files stored as is)."
    )
    include_home = models.BooleanField("home files", default=True, help_text="Home folder, mail included.")
    include_databases = models.BooleanField("databases", default=True)
    excludes = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_excludes],
        help_text="Glob patterns relative to the home folder; a trailing / matches folders.",
    )
    schedule = models.CharField(
        max_length=100,
        blank=True,
        validators=[validate_cron],
        help_text="Cron expression (minute hour day month weekday). Empty: only when run by hand.",
    )
    enabled = models.BooleanField(default=True)
    running = models.ForeignKey(
        "QueueItem", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.schedule = " ".join(self.schedule.split())
        errors = {}
        if self.destination_id is not None:
            destination = self.destination
            if destination.engine != Engine.NATIVE:
                errors["destination"] = (
                    "Backups can only be written to a destination with the Backupsite engine."
                )
            elif destination.read_only:
                errors["destination"] = "This destination is read only."
        if not self.include_home and not self.include_databases:
            errors["include_home"] = "Include home files, databases, or both."
        if errors:
            raise ValidationError(errors)


class QueueItem(models.Model):
    """The single truth about one piece of background work; tasks write it, pages read it."""

    class Kind(models.TextChoices):
        BACKUP = "backup", "Backup"
        ROTATION = "rotation", "Rotation"
        REINDEX = "reindex", "Reindex"
        RESTORE = "restore", "Restore"
        DOWNLOAD = "download", "Download"

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
        BackupJob, on_delete=models.SET_NULL, null=True, blank=True, related_name="queue_items"
    )
    destination = models.ForeignKey(
        Destination, on_delete=models.SET_NULL, null=True, blank=True, related_name="queue_items"
    )
    account = models.ForeignKey(
        Account, on_delete=models.SET_NULL, null=True, blank=True, related_name="queue_items"
    )
    snapshot = models.ForeignKey(
        "destinations.Snapshot", on_delete=models.SET_NULL, null=True, blank=True, related_name="queue_items"
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

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED
