"""Notifications: who is told what, when, and in how many messages.

Finished queue items come in through the queue's finished hook (registered below; the queue
knows nothing of notifications) and become events; other work calls `notify` directly
(`account_removed`, `integrity_problem`). Each event becomes one `Notification` row per
target that wants it, sent by a Celery task after the surrounding transaction commits, with
retries: a dead target only fails its own messages, never the work that caused them.

Repeats are grouped: for one target, one event and one subject (a job, a destination, an
account) at most one message goes out per hour; the others are held, and once the hour is
over one summary reports them (`send_held_summaries`, on a beat schedule).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from backupsite.errors import hint_of, message_of
from destinations.ftp import CONNECTION_FAILURES
from jobs import queue
from jobs.models import Notification, NotificationEvent, NotificationTarget, QueueItem
from jobs.notify import senders

logger = logging.getLogger(__name__)

# The task that sends one notification (jobs.notify.tasks), sent by name: the tasks import
# this module, not the other way round.
SEND_NOTIFICATION = "jobs.tasks.send_notification"

Event = NotificationEvent
GROUP_WINDOW = timedelta(hours=1)
HISTORY_KEPT = timedelta(days=30)
MAX_ATTEMPTS = 6
# Each of these is news on its own (a person asked for the restore; the summary is the digest).
_NEVER_GROUPED = {Event.RESTORE_COMPLETED, Event.DAILY_SUMMARY}
TEST_EVENT = "test"
_LEVELS: dict[str, str] = {
    Event.BACKUP_FAILED: "failure",
    Event.REINDEX_FAILED: "failure",
    Event.DESTINATION_UNREACHABLE: "failure",
    Event.INTEGRITY_PROBLEM: "failure",
    Event.BACKUP_PARTIAL: "warning",
    Event.ACCOUNT_REMOVED: "warning",
    Event.BACKUP_COMPLETED: "success",
    Event.RESTORE_COMPLETED: "success",
}
Status = Notification.Status


def item_url(item: QueueItem | int) -> str:
    """The queue item's page, as an absolute address (BACKUPSITE_URL)."""
    pk = item if isinstance(item, int) else item.pk
    return f"{settings.SITE_URL}{reverse('jobs:queue-detail', args=[pk])}"


def notify(
    event: str,
    *,
    title: str,
    account: str = "",
    error: str = "",
    hint: str = "",
    details: Sequence[str] = (),
    item: QueueItem | None = None,
    key: str = "",
    now: Any = None,
) -> list[Notification]:
    """Tell every enabled target that wants `event` that `title` happened.

    `account`, `error` and `hint` say for which account, what went wrong and what to do;
    `details` are more lines; `item` links the message to its queue item; `key` is what
    repeats are grouped by (default: the item's job or destination, else the account).
    Returns the notifications created (sent after commit, or held when grouped)."""
    if event not in Event.values:
        raise ValueError(f"unknown notification event {event!r}")
    now = now or timezone.now()
    key = key or _default_key(item, account)
    subject, body = _compose(title, account=account, error=error, hint=hint, details=details, item=item)
    detail = " ".join(f"{account + ': ' if account else ''}{error or title}".split())[:500]
    created: list[Notification] = []
    for target in NotificationTarget.objects.filter(enabled=True).order_by("pk"):
        if event not in target.events:
            continue
        held = event not in _NEVER_GROUPED and _sent_recently(target, event, key, now)
        created.append(
            Notification.objects.create(
                target=target,
                event=event,
                key=key,
                queue_item=item,
                subject=subject,
                body=body,
                detail=detail,
                status=Status.HELD if held else Status.PENDING,
                created=now,
            )
        )
    _send_after_commit([n.pk for n in created if n.status == Status.PENDING])
    return created


def _default_key(item: QueueItem | None, account: str) -> str:
    if item is not None and item.job_id:
        return f"job:{item.job_id}"
    if item is not None and item.destination_id:
        return f"destination:{item.destination_id}"
    if account:
        return f"account:{account}"
    return f"item:{item.pk}" if item is not None else ""


def _sent_recently(target: NotificationTarget, event: str, key: str, now: Any) -> bool:
    """Whether a message (not a held one) for this target, event and subject went out within
    the group window: then the new one waits for the summary."""
    return (
        Notification.objects.filter(target=target, event=event, key=key, created__gt=now - GROUP_WINDOW)
        .exclude(status__in=[Status.HELD, Status.GROUPED])
        .exists()
    )


def _compose(
    title: str,
    *,
    account: str = "",
    error: str = "",
    hint: str = "",
    details: Sequence[str] = (),
    item: QueueItem | None = None,
) -> tuple[str, str]:
    subject = " ".join(f"[Backupsite] {title}{f' ({account})' if account else ''}".split())[:250]
    lines = [title]
    if account:
        lines.append(f"Account: {account}")
    if error:
        lines.append(f"Error: {error}")
    if hint:
        lines.append(f"Hint: {hint}")
    lines.extend(details)
    if item is not None:
        lines += ["", f"Queue item: {item_url(item)}"]
    return subject, "\n".join(lines) + "\n"


def _send_after_commit(ids: list[int]) -> None:
    if ids:
        transaction.on_commit(lambda: _dispatch(ids))


def _dispatch(ids: list[int]) -> None:
    """Hand the messages to the workers. A broker that is down loses nothing of the work that
    caused them: the rows stay pending and `send_held_summaries` sends them again later."""
    for pk in ids:
        try:
            current_app.tasks[SEND_NOTIFICATION].delay(pk)
        except Exception:
            logger.exception("notification %s could not be queued for sending", pk)


# --- sending ------------------------------------------------------------------------------------

SENT, RETRY, GONE, FAILED = "sent", "retry", "gone", "failed"


def deliver(notification_id: int, *, last_attempt: bool) -> str:
    """Send one pending notification. SENT, GONE (nothing to do), RETRY (failed, try again
    later) or FAILED (failed on the last attempt)."""
    taken = Notification.objects.filter(pk=notification_id, status=Status.PENDING).update(
        status=Status.SENDING
    )
    if not taken:
        return GONE
    notification = Notification.objects.select_related("target").get(pk=notification_id)
    target = notification.target
    if target is None and not notification.recipient:
        Notification.objects.filter(pk=notification_id).update(status=Status.FAILED, error="no recipient")
        return FAILED
    if target is not None and not target.enabled:
        Notification.objects.filter(pk=notification_id).update(
            status=Status.FAILED, error="the target was disabled before this was sent"
        )
        return FAILED
    now = timezone.now()
    try:
        url = target.url if target is not None else f"mailto:{notification.recipient}"
        level = _LEVELS.get(notification.event, "info")
        senders.deliver(url, notification.subject, notification.body, level=level)
    except Exception as exc:
        reason = exc.message if isinstance(exc, senders.SendFailed) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, senders.SendFailed):
            reason = _scrub_target(reason, target)
        status = Status.FAILED if last_attempt else Status.PENDING
        Notification.objects.filter(pk=notification_id).update(
            status=status, attempts=notification.attempts + 1, error=reason[:2000]
        )
        if target is not None:
            NotificationTarget.objects.filter(pk=target.pk).update(
                last_error=f"{now:%Y-%m-%d %H:%M} {reason}"[:2000]
            )
        logger.warning("notification %s to %s failed: %s", notification_id, target or "a client", reason)
        return FAILED if last_attempt else RETRY
    Notification.objects.filter(pk=notification_id).update(
        status=Status.SENT, attempts=notification.attempts + 1, sent=now, error=""
    )
    if target is not None:
        NotificationTarget.objects.filter(pk=target.pk).update(last_sent=now, last_error="")
    return SENT


def _scrub_target(text: str, target: NotificationTarget | None) -> str:
    if target is None:
        return text
    try:
        return senders._scrub(text, target.url, target.url_display)
    except Exception:
        return "the message could not be sent"


def retry_delay(retries: int) -> float:
    """Backoff with jitter: about 30 s, 1, 2, 4, 8 minutes."""
    return min(30.0 * 2**retries, 900.0) * random.uniform(0.8, 1.2)


def send_test(target: NotificationTarget) -> str:
    """Send a test message now (the "Send test" button); returns "" or why it failed."""
    subject = f"[Backupsite] Test message for {target.name}"
    body = (
        f"This is a test message from Backupsite to the notification target {target.name!r}.\n"
        f"It gets: {', '.join(target.events) or 'no events yet'}.\n\n{settings.SITE_URL}/\n"
    )
    now = timezone.now()
    try:
        senders.deliver(target.url, subject, body)
    except Exception as exc:
        reason = exc.message if isinstance(exc, senders.SendFailed) else _scrub_target(str(exc), target)
        Notification.objects.create(
            target=target, event=TEST_EVENT, subject=subject, body=body, status=Status.FAILED, error=reason
        )
        NotificationTarget.objects.filter(pk=target.pk).update(last_error=f"{now:%Y-%m-%d %H:%M} {reason}")
        return reason or "the message could not be sent"
    Notification.objects.create(
        target=target, event=TEST_EVENT, subject=subject, body=body, status=Status.SENT, sent=now, attempts=1
    )
    NotificationTarget.objects.filter(pk=target.pk).update(last_sent=now, last_error="")
    return ""


def save_target(target: NotificationTarget, parsed: senders.ParsedTarget | None) -> NotificationTarget:
    """Save a target; `parsed` is its new URL, or None to keep the stored one."""
    if parsed is not None:
        target.set_url(parsed.url, parsed.display)
    target.save()
    return target


# --- grouping -------------------------------------------------------------------------------------


def send_held_summaries(now: Any = None) -> int:
    """For each target, event and subject with held messages whose hour is over, send one
    summary of them; send again pending messages the broker lost; forget messages older than
    HISTORY_KEPT. Returns how many summaries were made."""
    now = now or timezone.now()
    groups = (
        Notification.objects.filter(status=Status.HELD)
        .values_list("target_id", "event", "key")
        .distinct()
        .order_by()
    )
    count = 0
    for target_id, event, key in list(groups):
        target = NotificationTarget.objects.filter(pk=target_id).first()
        if target is None or _sent_recently(target, event, key, now):
            continue
        with transaction.atomic():
            held = list(
                Notification.objects.select_for_update()
                .filter(target=target, event=event, key=key, status=Status.HELD)
                .order_by("created", "pk")
            )
            if not held:
                continue
            summary = Notification.objects.create(
                target=target,
                event=event,
                key=key,
                queue_item=held[-1].queue_item,
                subject=_summary_subject(held),
                body=_summary_body(held),
                detail=f"{len(held)} held back",
                status=Status.PENDING if target.enabled else Status.FAILED,
                error="" if target.enabled else "the target is disabled",
                created=now,
            )
            Notification.objects.filter(pk__in=[n.pk for n in held]).update(
                status=Status.GROUPED, summary=summary
            )
            if target.enabled:
                _send_after_commit([summary.pk])
        count += 1
    lost = (
        Notification.objects.filter(
            status=Status.PENDING, attempts=0, created__lt=now - timedelta(minutes=15)
        )
        .exclude(target__enabled=False)
        .values_list("pk", flat=True)
    )
    _send_after_commit(list(lost[:500]))
    # The history is for looking back a few weeks, not an archive.
    Notification.objects.filter(created__lt=now - HISTORY_KEPT).exclude(status=Status.HELD).delete()
    return count


def _summary_subject(held: list[Notification]) -> str:
    first = held[0].subject.removeprefix("[Backupsite] ")
    return f"[Backupsite] {len(held)} more: {first}"[:250]


def _summary_body(held: list[Notification]) -> str:
    first, last = held[0].created, held[-1].created
    event = Event(held[0].event).label if held[0].event in Event.values else held[0].event
    lines = [
        f"{len(held)} more times “{event}” between {timezone.localtime(first):%Y-%m-%d %H:%M} and "
        f"{timezone.localtime(last):%H:%M} ({settings.TIME_ZONE}), held back so as not to flood you:",
        "",
    ]
    for detail, times in Counter(n.detail for n in held).most_common(20):
        lines.append(f"- {times} x {detail}")
    lines += ["", "The latest of them:", "", held[-1].body]
    return "\n".join(lines)


# --- the daily summary ------------------------------------------------------------------------------


def daily_summary(now: Any = None) -> list[Notification]:
    """What happened in the last 24 hours, for the targets that want `daily_summary`."""
    now = now or timezone.now()
    since = now - timedelta(days=1)
    items = QueueItem.objects.filter(finished__gte=since, finished__lt=now).select_related(
        "job", "destination"
    )
    counts = Counter((item.kind, item.status) for item in items)
    lines = [
        f"Backupsite, {timezone.localtime(since):%Y-%m-%d %H:%M} to {timezone.localtime(now):%Y-%m-%d %H:%M}:",
        "",
    ]
    for kind in QueueItem.Kind:
        row = {
            status: counts[(kind.value, status.value)]
            for status in QueueItem.Status
            if counts[(kind.value, status.value)]
        }
        if row:
            lines.append(
                f"{kind.label}: "
                + ", ".join(f"{n} {QueueItem.Status(s).label.lower()}" for s, n in row.items())
            )
    if len(lines) == 2:
        lines.append("Nothing ran.")
    problems = [item for item in items if item.status in (QueueItem.Status.FAILED, QueueItem.Status.PARTIAL)]
    if problems:
        lines += ["", "Problems:"]
        for item in problems[:50]:
            lines.append(
                f"- {item.get_kind_display()} {item.title or ''} ({item.get_status_display().lower()}): {item.error[:300]}"
            )
            for failure in _account_failures(item, None):
                lines.append(f"    {failure['account']}: {failure['error']}")
            lines.append(f"    {item_url(item)}")
    return notify(
        Event.DAILY_SUMMARY,
        title=f"Daily summary for {timezone.localtime(now):%Y-%m-%d}",
        details=lines,
        key="daily",
        now=now,
    )


# --- finished queue items ------------------------------------------------------------------------------


def _account_failures(item: QueueItem, exc: BaseException | None) -> list[dict[str, Any]]:
    failures = getattr(exc, "failures", None)
    if failures is None:
        failures = [r for r in (item.result or {}).get("accounts", []) if r.get("status") == "failed"]
    return [f for f in failures if isinstance(f, dict) and "account" in f and "error" in f]


def item_finished(item: QueueItem, exc: BaseException | None) -> None:
    """The queue's finished hook: turn a finished item into its events."""
    Kind, S = QueueItem.Kind, QueueItem.Status
    failures = _account_failures(item, exc)
    what = _what(item)
    if item.kind == Kind.BACKUP and item.status in (S.FAILED, S.PARTIAL):
        event = Event.BACKUP_FAILED if item.status == S.FAILED else Event.BACKUP_PARTIAL
        verb = "failed" if item.status == S.FAILED else "partially completed"
        notify(event, title=f"Backup {verb}: {what}", **_failure_fields(item, exc, failures), item=item)
    elif item.kind == Kind.BACKUP and item.status == S.COMPLETED:
        accounts = [r.get("account", "") for r in (item.result or {}).get("accounts", [])]
        notify(
            Event.BACKUP_COMPLETED,
            title=f"Backup completed: {what}",
            details=[f"Accounts: {', '.join(a for a in accounts if a)}"] if accounts else [],
            item=item,
        )
    elif item.kind == Kind.RESTORE and item.status == S.COMPLETED:
        account = item.account.username if item.account_id and item.account else ""
        title = f"{item.title or 'Restore'} completed"
        folder = (item.result or {}).get("folder")
        details = [f"Restored into: {folder}"] if isinstance(folder, str) and folder else []
        notify(Event.RESTORE_COMPLETED, title=title, account=account, details=details, item=item)
        _tell_client(item, title, account, details)
    elif item.kind == Kind.REINDEX and item.status == S.FAILED:
        notify(Event.REINDEX_FAILED, title=f"Reindex failed: {what}", **_error_of(item, exc), item=item)
    if item.destination_id and item.status in (S.FAILED, S.PARTIAL):
        unreachable = [f for f in failures if f.get("unreachable")]
        if isinstance(exc, CONNECTION_FAILURES) or unreachable:
            cause: dict[str, str] = (
                {"error": unreachable[0]["error"], "hint": unreachable[0].get("hint", "")}
                if unreachable
                else _error_of(item, exc)
            )
            notify(
                Event.DESTINATION_UNREACHABLE,
                title=f"Destination unreachable: {item.destination}",
                **cause,
                item=item,
                key=f"destination:{item.destination_id}",
            )


queue.on_finished(item_finished)


def _what(item: QueueItem) -> str:
    if item.job_id and item.job is not None:
        where = f" to {item.destination}" if item.destination_id else ""
        return f"job {item.job.name}{where}"
    if item.destination_id:
        return f"destination {item.destination}"
    return item.title or f"queue item {item.pk}"


def _error_of(item: QueueItem, exc: BaseException | None) -> dict[str, str]:
    """The error without its hint, and the hint on its own (the item's error has both)."""
    if exc is None:
        return {"error": item.error}
    return {
        "error": message_of(exc),
        "hint": hint_of(exc),
    }


def _failure_fields(
    item: QueueItem, exc: BaseException | None, failures: list[dict[str, Any]]
) -> dict[str, Any]:
    """One message per run: the failed account with its error and hint, or each of them."""
    if not failures:
        return _error_of(item, exc)
    if len(failures) == 1:
        only = failures[0]
        return {"account": only["account"], "error": only["error"], "hint": only.get("hint", "")}
    details = []
    for failure in failures[:50]:
        details.append(f"- {failure['account']}: {failure['error']}")
        if failure.get("hint"):
            details.append(f"  Hint: {failure['hint']}")
    return {
        "account": ", ".join(f["account"] for f in failures[:10]) + (" ..." if len(failures) > 10 else ""),
        "error": f"{len(failures)} accounts failed",
        "details": details,
    }


def _tell_client(item: QueueItem, title: str, account: str, details: list[str]) -> None:
    """A client with an email address hears about their own restores, and nothing else."""
    user = item.requested_by
    if user is None or user.is_staff or not user.email or item.account is None:
        return
    if item.account.owner_id != user.pk:
        return
    subject, body = _compose(title, account=account, details=details, item=item)
    notification = Notification.objects.create(
        recipient=user.email,
        event=Event.RESTORE_COMPLETED,
        key=f"item:{item.pk}",
        queue_item=item,
        subject=subject,
        body=body,
        detail=title[:500],
    )
    _send_after_commit([notification.pk])
