import contextlib
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from . import crypto
from .ftp import FtpSettings
from .validators import (
    normalise_directory,
    validate_cron,
    validate_directory,
    validate_fingerprint,
    validate_host,
)


class Engine(models.TextChoices):
    NATIVE = "native", "Backupsite"
    CPANEL = "cpanel", "cPanel"


CHANGED_SERVER_MESSAGE = (
    "You changed the {what}: enter the password again (the saved one is only sent to the "
    "server it was entered for)."
)


def _bound_value(name: str, value: object) -> object:
    """How a setting the password is bound to compares: host names ignore case."""
    if name == "host":
        return str(value or "").strip().strip("[]").lower()
    if name == "port":
        try:
            return int(value)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return value
    return value


class Destination(models.Model):
    """An FTP server (and a directory on it) that holds backups."""

    # What an admin sets, in the order the API and the admin show it ("password" is write-only).
    SETTINGS = (
        "name",
        "engine",
        "directory",
        "host",
        "port",
        "username",
        "password",
        "timeout",
        "retries",
        "concurrency",
        "ssl",
        "passive",
        "tls_fingerprint",
        "reindex_schedule",
        "verify_schedule",
        "verify_read_percent",
        "read_only",
        "disabled",
    )

    name = models.CharField(
        max_length=40,
        unique=True,
        help_text="A name for this destination, shown in lists (at most 40 characters).",
    )
    engine = models.CharField(
        max_length=10,
        choices=Engine.choices,
        default=Engine.NATIVE,
        help_text="Backupsite: Backupsite writes and reads its own backups here. "
        "cPanel: index the backups cPanel writes here, for browsing and restore.",
    )
    directory = models.CharField(
        max_length=255,
        blank=True,
        validators=[validate_directory],
        help_text="Folder for backups, relative to the FTP user's home (created when missing). "
        "Empty: the home itself.",
    )
    host = models.CharField(
        max_length=255,
        validators=[validate_host],
        help_text="Host name or IP address (IPv4 or IPv6) of the FTP server.",
    )
    port = models.PositiveIntegerField(
        default=21,
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text="TCP port of the FTP server. Default 21.",
    )
    username = models.CharField(
        max_length=128,
        help_text="FTP user. Use a dedicated backup user, not root.",
    )
    password_encrypted = models.TextField(blank=True, editable=False)
    timeout = models.PositiveIntegerField(
        "connection timeout",
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text="Seconds to wait for the server to connect, answer or move data. Default 30.",
    )
    retries = models.PositiveIntegerField(
        "maximum connection retries",
        default=5,
        validators=[MaxValueValidator(1000)],
        help_text="How many times to retry a failed connection or transfer. 0 = unlimited. Default 5.",
    )
    concurrency = models.PositiveIntegerField(
        "maximum concurrent connections",
        default=2,
        validators=[MaxValueValidator(64)],
        help_text="Connections open at once to this server, across all workers. 0 = unlimited. Default 2.",
    )
    ssl = models.BooleanField(
        "explicit SSL-FTP",
        default=True,
        help_text="Encrypt login and data with explicit TLS (AUTH TLS). Default on.",
    )
    passive = models.BooleanField(
        "passive FTP",
        default=True,
        help_text="Passive mode: the server opens the data port (works through NAT and firewalls). "
        "Off: active mode, the server connects back. Default on.",
    )
    tls_fingerprint = models.CharField(
        "pinned certificate",
        max_length=110,
        blank=True,
        validators=[validate_fingerprint],
        help_text="SHA-256 fingerprint of the server certificate to trust when it is not signed by "
        "a known authority. Validate fills it in; saving pins it.",
    )
    reindex_schedule = models.CharField(
        max_length=100,
        blank=True,
        validators=[validate_cron],
        help_text="Cron expression (minute hour day month weekday) for an automatic reindex, "
        "typically just after cPanel's nightly backup, e.g. '30 5 * * *'. Empty: only on demand.",
    )
    verify_schedule = models.CharField(
        max_length=100,
        blank=True,
        default="0 4 * * 0",
        validators=[validate_cron],
        help_text="Cron expression for an automatic integrity check (weekly by default: Sunday 04:00). "
        "Empty: only on demand.",
    )
    verify_read_percent = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Share of the stored bytes a scheduled integrity check downloads and checks (0-100); "
        "each check reads other files, so every file is read over time.",
    )
    read_only = models.BooleanField(
        default=False,
        help_text="Only read from this destination (restore, download, reindex); never write or delete.",
    )
    disabled = models.BooleanField(
        default=False,
        help_text="Do not use this destination at all.",
    )
    last_reindex = models.DateTimeField(null=True, blank=True, editable=False)
    # The last integrity check: when, and its summary ({"ok", "damaged", "orphans", ...}).
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    verify_result = models.JSONField(default=dict, blank=True, editable=False)
    # Where the next check's sample starts (a bucket 0-99) and the key that spreads files over
    # the buckets: each check reads the next read_percent buckets, so all are read over time.
    verify_cursor = models.PositiveSmallIntegerField(default=0, editable=False)
    verify_salt = models.CharField(max_length=64, blank=True, editable=False)
    # The last Validate of exactly the saved settings (destinations.validated keeps it true).
    validated_at = models.DateTimeField(null=True, blank=True, editable=False)
    validated_ok = models.BooleanField(null=True, blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        self._password_entered = False  # a later change of host, port or user needs it again

    @property
    def password(self) -> str:
        return crypto.decrypt(self.password_encrypted)

    def set_password(self, raw: str) -> None:
        self.password_encrypted = crypto.encrypt(raw)
        self._password_entered = True

    # The saved password was entered for one server and one user: a form, the API or the
    # admin that points the destination elsewhere without the password again would send it
    # to whoever listens at the new address.
    PASSWORD_BOUND_TO = ("host", "port", "username")

    def _password_needed_again(self) -> str:
        """The changed fields the saved password is bound to ("" when none, or when a new
        password was given with them)."""
        if self.pk is None or getattr(self, "_password_entered", False) or not self.has_password:
            return ""
        saved = type(self).objects.filter(pk=self.pk).values(*self.PASSWORD_BOUND_TO).first()
        if saved is None:
            return ""
        changed = [
            name
            for name in self.PASSWORD_BOUND_TO
            if _bound_value(name, getattr(self, name)) != _bound_value(name, saved[name])
        ]
        return " and ".join(changed)

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)

    @classmethod
    def for_work(cls, pk: int | None) -> "Destination":
        """The destination a queued reindex or check works on; RuntimeError (the item's error)
        when it was deleted or is disabled."""
        destination = cls.objects.filter(pk=pk or 0).first()
        if destination is None:
            raise RuntimeError("The destination was deleted.")
        if destination.disabled:
            raise RuntimeError(f"Destination {destination} is disabled.")
        return destination

    def in_use_message(self) -> str:
        """Why the destination cannot be deleted while backup jobs write to it."""
        jobs = ", ".join(job.name for job in self.jobs.all())
        return f"Backup jobs still write to “{self.name}”: {jobs}. Delete or move them first."

    @property
    def username_is_root(self) -> bool:
        return self.username.strip().lower() == "root"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        with contextlib.suppress(ValidationError):  # the field's validator reports it, once
            self.directory = normalise_directory(self.directory)
        self.host = self.host.strip()
        if self.host.startswith("[") and self.host.endswith("]"):
            self.host = self.host[1:-1]
        self.reindex_schedule = " ".join(self.reindex_schedule.split())
        if self.username != self.username.strip() or any(ord(c) < 32 for c in self.username):
            errors["username"] = "The username must not contain spaces at the ends or control characters."
        if self.disabled and self.read_only:
            pass  # both may be set: disabled wins
        changed = self._password_needed_again()
        if changed:
            errors["password"] = CHANGED_SERVER_MESSAGE.format(what=changed)
        if errors:
            raise ValidationError(errors)

    def ftp_settings(self, *, password: str | None = None) -> FtpSettings:
        return FtpSettings(
            host=self.host,
            port=self.port,
            username=self.username,
            password=self.password if password is None else password,
            directory=self.directory,
            timeout=float(self.timeout),
            retries=self.retries,
            ssl=self.ssl,
            passive=self.passive,
            tls_fingerprint=self.tls_fingerprint,
        )

    @property
    def lease_key(self) -> str:
        return f"backupsite:destination:{self.pk}:connections"


class ListingBlob(models.Model):
    """The entries of one folder of a backup's file listing, compressed, keyed by content."""

    digest = models.CharField(max_length=64, primary_key=True)
    data = models.BinaryField()
    entries = models.PositiveIntegerField(default=0)
    # Last time a listing was built that uses this blob: garbage collection spares recent
    # blobs, which a backup still being indexed may be about to reference.
    touched = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return self.digest
