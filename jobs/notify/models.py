"""Notification targets and the outbox. Targets' URLs are encrypted like destination passwords."""

from django.db import models
from django.utils import timezone

from destinations import crypto

from ..validators import validate_events


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
        return crypto.decrypt(self.url_encrypted)

    def set_url(self, url: str, display: str) -> None:
        """Store a URL that `senders.parse_target` accepted, with its redacted form."""
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
        "jobs.QueueItem", on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications"
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
