import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from destinations.models import Destination, Engine
from destinations.validators import validate_cron

from .ownership import Owners
from .validators import (
    validate_database_names,
    validate_events,
    validate_excludes,
    validate_globs,
    validate_home,
    validate_username,
    validate_usernames,
)


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

    class Source(models.TextChoices):
        CPANEL = "cpanel", "cPanel"
        SYSTEM = "system", "System user"
        MANUAL = "manual", "Added by hand"
        BACKUPS = "backups", "Found in backups"

    # What discovery fills in; an admin's edit of one of these wins over later discoveries.
    DISCOVERED_FIELDS = ("home", "databases", "database_users", "reseller", "domains", "suspended", "plan")

    source = models.CharField(
        max_length=10,
        choices=Source.choices,
        default=Source.MANUAL,
        help_text="Where the account comes from: discovered on this server (cPanel or system "
        "users), added by hand, or only found in backups on a destination.",
    )
    reseller = models.CharField(
        max_length=32, blank=True, help_text="cPanel owner (reseller), root for the server's own."
    )
    domains = models.JSONField(
        default=list, blank=True, help_text="Main domain first, then addon and parked ones."
    )
    database_users = models.JSONField(default=list, blank=True)
    plan = models.CharField(max_length=100, blank=True)
    suspended = models.BooleanField(default=False)
    removed_at = models.DateTimeField(
        null=True, blank=True, help_text="When discovery last found the account gone from this server."
    )
    admin_fields = models.JSONField(
        default=list, blank=True, help_text="Fields an admin set by hand; discovery leaves them alone."
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return self.username

    @property
    def found_in_backups(self) -> bool:
        return self.source == self.Source.BACKUPS

    def mark_set_by_admin(self, fields: list[str]) -> None:
        """Remember that an admin set `fields`, so discovery does not overwrite them."""
        self.admin_fields = sorted(set(self.admin_fields or []) | (set(fields) & set(self.DISCOVERED_FIELDS)))

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
        "accounts_mode",
        "accounts",
        "include",
        "exclude",
        "resellers",
        "skip_suspended",
        "parallel",
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

    class AccountsMode(models.TextChoices):
        ALL = "all", "All accounts on this server"
        SELECTED = "selected", "Only the accounts chosen below"

    accounts_mode = models.CharField(
        "accounts",
        max_length=10,
        choices=AccountsMode.choices,
        default=AccountsMode.ALL,
        help_text="All: every account on this server when the run starts (new ones included, "
        "removed ones not), narrowed by the filters below.",
    )
    accounts = models.ManyToManyField(
        Account, related_name="jobs", blank=True, verbose_name="chosen accounts"
    )
    include = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_globs],
        help_text="Only usernames matching one of these shell globs (e.g. shop*). Empty: every account.",
    )
    exclude = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_globs],
        help_text="Skip usernames matching these globs.",
    )
    resellers = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_usernames],
        help_text="Only accounts of these resellers (cPanel owners; root for the server's own). Empty: any.",
    )
    skip_suspended = models.BooleanField(default=False, help_text="Leave suspended accounts out.")
    parallel = models.PositiveSmallIntegerField(
        "accounts at a time",
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(16)],
        help_text="Accounts backed up at the same time (1-16), never more than the destination's "
        "connection cap.",
    )
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


class NotificationTarget(models.Model):
    """Where notifications go: an email address (sent through the mail settings) or an
    Apprise URL (Slack, Telegram, Discord, Matrix, a JSON webhook, ...).

    The URL is encrypted at rest like a destination's password: Apprise URLs carry tokens.
    `url_display` is the redacted form, the only one pages and the API ever show.
    """

    name = models.CharField(max_length=80, unique=True, help_text="A name for this target, shown in lists.")
    url_encrypted = models.TextField(editable=False)
    url_display = models.CharField(max_length=2000, editable=False)
    events = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_events],
        help_text="What to tell this target about.",
    )
    enabled = models.BooleanField(default=True)
    last_sent = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def url(self) -> str:
        from destinations import crypto

        return crypto.decrypt(self.url_encrypted)

    def set_url(self, url: str, display: str) -> None:
        """Store a URL that `senders.parse_target` accepted, with its redacted form."""
        from destinations import crypto

        self.url_encrypted = crypto.encrypt(url)
        self.url_display = display

    def clean(self) -> None:
        self.events = [event for i, event in enumerate(self.events) if event not in self.events[:i]]


class Notification(models.Model):
    """One message to one target (or to a client's own address): the outbox and its history.

    Repeats of an event for the same subject (a job, a destination) within an hour are kept
    `held` instead of sent; a summary message later reports them and they become `grouped`.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        HELD = "held", "Held back"
        GROUPED = "grouped", "Reported in a summary"

    target = models.ForeignKey(
        NotificationTarget, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications"
    )
    recipient = models.EmailField(blank=True, help_text="A client's own address, when there is no target.")
    event = models.CharField(max_length=32)
    key = models.CharField(max_length=100, blank=True, help_text="What repeats are grouped by: job:7, ...")
    queue_item = models.ForeignKey(
        QueueItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications"
    )
    subject = models.CharField(max_length=250)
    body = models.TextField()
    detail = models.CharField(max_length=500, blank=True, help_text="One line, for summaries.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    summary = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="grouped"
    )
    created = models.DateTimeField(default=timezone.now, db_index=True)
    sent = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["target", "event", "key", "created"])]

    def __str__(self) -> str:
        return f"{self.event} to {self.target or self.recipient} ({self.status})"
