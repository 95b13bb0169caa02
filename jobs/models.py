"""The models of the jobs app: accounts, their backups as the index knows them (Snapshot),
and backup jobs. The queue's table and the notification tables live with their packages
(`jobs.queue.models`, `jobs.notify.models`); they are imported here so Django registers them
with the app, and may be imported from here too."""

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from destinations.models import Destination, Engine
from destinations.validators import validate_cron

from .notify.kinds import NotificationEvent
from .notify.models import Notification, NotificationTarget
from .ownership import Owners
from .queue.models import QueueItem
from .validators import (
    validate_database_names,
    validate_excludes,
    validate_globs,
    validate_home,
    validate_username,
    validate_usernames,
)

__all__ = [
    "Account",
    "BackupJob",
    "Notification",
    "NotificationEvent",
    "NotificationTarget",
    "QueueItem",
    "Snapshot",
]


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


class Snapshot(models.Model):
    """One backup that lies on a destination, as the index knows it.

    `complete` is the single gate for restore: a backup is offered only once complete and
    without problem flags. Listings of its files live in content-addressed `ListingBlob`s
    (one per folder, shared between backups where a folder did not change), so N backups of a
    home with a million files cost about N x folders rows, not N x files.
    """

    class Type(models.TextChoices):
        FULL = "full", "Full"
        INCREMENTAL = "incremental", "Incremental"

    class State(models.TextChoices):
        COMPLETE = "complete", "Complete"
        WRITING = "writing", "Being written"
        UPDATING = "updating", "Being updated"
        BROKEN = "broken", "Damaged"
        INCOMPLETE = "incomplete", "Incomplete"

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="snapshots")
    account = models.ForeignKey(
        Account, on_delete=models.SET_NULL, null=True, blank=True, related_name="snapshots"
    )
    account_name = models.CharField(max_length=64, db_index=True)
    engine = models.CharField(max_length=10, choices=Engine.choices)
    type = models.CharField(max_length=12, choices=Type.choices, default=Type.FULL)
    layout = models.CharField(max_length=20, blank=True, help_text="Where cPanel put it: daily, weekly, ...")
    path = models.CharField(
        max_length=1024, help_text="Where it lies, relative to the destination directory."
    )
    created = models.DateTimeField(help_text="When its data was taken.")
    size = models.BigIntegerField(default=0, help_text="Bytes stored on the destination.")
    state = models.CharField(max_length=12, choices=State.choices, default=State.WRITING)
    locked = models.BooleanField(default=False)
    flags = models.JSONField(default=list, blank=True)
    problems = models.JSONField(default=list, blank=True)
    parts = models.JSONField(default=list, blank=True)
    listing_root = models.CharField(max_length=64, blank=True)
    # Which job's cycle it belongs to (native engine), and its generation on the destination.
    job_uuid = models.UUIDField(null=True, blank=True, db_index=True)
    generation = models.PositiveIntegerField(default=0)
    # What the last read saw on the destination, so an unchanged archive is not read again.
    remote_size = models.BigIntegerField(null=True, blank=True)
    remote_mtime = models.DateTimeField(null=True, blank=True)
    remote_key = models.CharField(max_length=255, blank=True)
    indexed = models.DateTimeField(null=True, blank=True)
    # The last integrity check of this backup and what it found: [{"path", "problem"}]. A
    # backup with problems is damaged: it stays restorable, and restores what is intact.
    verified_at = models.DateTimeField(null=True, blank=True)
    verify_problems = models.JSONField(default=list, blank=True)
    # Engine details a restore needs (cPanel: the archive's top folder, its pieces, ...).
    meta = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "destinations_snapshot"  # where it lived first; the table kept its name
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(fields=["destination", "path"], name="unique_snapshot_path"),
        ]
        indexes = [models.Index(fields=["account_name", "-created"], name="destination_account_bc8c1b_idx")]

    def __str__(self) -> str:
        return f"{self.account_name} {self.created:%Y-%m-%d %H:%M} on {self.destination}"

    @property
    def complete(self) -> bool:
        return self.state == self.State.COMPLETE

    @property
    def damaged(self) -> bool:
        """The last integrity check found something missing or corrupt (orphans alone are not damage)."""
        return any(not p.get("problem", "").startswith("orphan") for p in self.verify_problems)

    @property
    def restorable(self) -> bool:
        return self.state == self.State.COMPLETE and not self.flags


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
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def lock_key(job_id: int) -> str:
        """The run lock a queue item holds while it runs this job (two runs never overlap)."""
        return f"backup:job:{job_id}"

    @property
    def running(self) -> QueueItem | None:
        """The run of this job holding its lock (pending or running), if any."""
        return QueueItem.objects.filter(lock=self.lock_key(self.pk)).first()

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
