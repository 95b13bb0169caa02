"""Notifications end to end: real failing backups and restores, a real SMTP server (aiosmtpd)
and a real HTTP receiver for an Apprise JSON webhook."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from destinations.models import Destination
from jobs.models import Notification, NotificationTarget, QueueItem
from jobs.notify import events as notifications
from jobs.notify import senders
from tests.support.fixtures_jobs import make_job, run_job
from tests.support.fixtures_notify import free_port
from tests.support.fixtures_restore import make_native_backup, run_restore

# Transactions commit as in production: the queue's heartbeat thread writes beside the test, and
# notifications go out on commit.
pytestmark = [pytest.mark.django_db(transaction=True)]

CONNECT_HINT = "Check the host name and port, and that the FTP server is running."


def add_target(url: str, events: list[str], name: str = "") -> NotificationTarget:
    target = NotificationTarget(name=name or f"nt-{secrets.token_hex(3)}", events=events)
    return notifications.save_target(target, senders.parse_target(url))


@pytest.fixture
def dead_destination(db) -> Destination:
    """An FTP destination nothing listens on: every connection is refused."""
    destination = Destination(
        name=f"notify-dead-{secrets.token_hex(3)}",
        host="127.0.0.1",
        port=free_port(),
        username="backup",
        ssl=False,
        timeout=5,
        retries=1,
        concurrency=0,
    )
    destination.set_password("pw")
    destination.save()
    return destination


def run_failing(job, capture) -> QueueItem:
    with capture(execute=True):
        item = run_job(job)
    assert item.status == QueueItem.Status.FAILED, (item.status, item.error)
    return item


def test_failed_backup_sends_one_mail_and_one_webhook_call_with_the_account_error_hint_and_link(
    smtp_server, webhook, eager_tasks, dead_destination, home_account, django_capture_on_commit_callbacks
) -> None:
    """
    GIVEN an email target and a JSON webhook target that want backup_failed
    WHEN a backup job runs against an FTP server that refuses connections
    THEN exactly one mail and one webhook call go out, each naming the account, the error,
         its hint and the absolute link to the queue item
    """
    add_target("ops@example.com", ["backup_failed"])
    add_target(webhook.url, ["backup_failed"])
    job = make_job(dead_destination, home_account, name=f"notify-{secrets.token_hex(3)}")

    item = run_failing(job, django_capture_on_commit_callbacks)

    mails = smtp_server.wait_for(1)
    calls = webhook.wait_for(1)
    link = f"https://panel.example/queue/{item.pk}/"
    assert len(mails) == 1
    assert len(calls) == 1
    mail = mails[0]
    assert mail["To"] == "ops@example.com"
    assert mail["From"] == "backupsite@panel.example"
    assert job.name in mail["Subject"]
    assert home_account.username in mail["Subject"]
    text = mail.get_content()
    for expected in (home_account.username, "could not connect to", CONNECT_HINT, link):
        assert expected in text, (expected, text)
    call = calls[0]
    assert call["title"] == mail["Subject"]
    assert call["type"] == "failure"
    for expected in (home_account.username, "could not connect to", CONNECT_HINT, link):
        assert expected in call["message"], (expected, call)
    assert webhook.paths == ["/hooks/backups"]


def test_an_unreachable_destination_is_its_own_event(
    smtp_server, eager_tasks, dead_destination, home_account, django_capture_on_commit_callbacks
) -> None:
    """
    GIVEN a target that wants only destination_unreachable
    WHEN a backup fails because the FTP server refuses connections
    THEN it gets one mail naming the destination and the hint, and nothing about backup_failed
    """
    add_target("noc@example.com", ["destination_unreachable"])
    run_failing(make_job(dead_destination, home_account), django_capture_on_commit_callbacks)

    mails = smtp_server.wait_for(1)
    assert len(mails) == 1
    assert f"Destination unreachable: {dead_destination.name}" in mails[0]["Subject"]
    assert CONNECT_HINT in mails[0].get_content()


def test_ten_failures_in_a_row_send_one_message_then_one_summary(
    smtp_server, webhook, eager_tasks, dead_destination, home_account, django_capture_on_commit_callbacks
) -> None:
    """
    GIVEN an email target and a webhook target that want backup_failed
    WHEN the same job fails ten times in a row within minutes
    THEN each gets one message at once, the nine others are held, and once the hour is over
         each gets one summary that counts the nine: two messages, not ten
    """
    add_target("ops@example.com", ["backup_failed"])
    add_target(webhook.url, ["backup_failed"])
    job = make_job(dead_destination, home_account)
    for _ in range(10):
        run_failing(job, django_capture_on_commit_callbacks)

    assert len(smtp_server.wait_for(1)) == 1
    assert len(webhook.wait_for(1)) == 1
    assert Notification.objects.filter(status=Notification.Status.HELD).count() == 18

    with django_capture_on_commit_callbacks(execute=True):
        assert notifications.send_held_summaries(now=timezone.now() + timedelta(minutes=30)) == 0
    assert len(smtp_server.messages) == 1  # the hour is not over yet

    with django_capture_on_commit_callbacks(execute=True):
        assert notifications.send_held_summaries(now=timezone.now() + timedelta(minutes=61)) == 2
    mails = smtp_server.wait_for(2)
    calls = webhook.wait_for(2)
    assert len(mails) == 2
    assert len(calls) == 2
    summary = mails[1].get_content()
    assert "9 more" in mails[1]["Subject"]
    assert f"9 x {home_account.username}: could not connect to" in summary
    assert "9 more" in calls[1]["title"]
    assert Notification.objects.filter(status=Notification.Status.HELD).count() == 0
    assert Notification.objects.filter(status=Notification.Status.GROUPED).count() == 18


def test_a_dead_target_fails_only_its_own_messages_never_the_backup(
    smtp_server, eager_tasks, native_destination, home_account, django_capture_on_commit_callbacks
) -> None:
    """
    GIVEN a webhook target nothing listens on and an email target, both wanting backup_completed
    WHEN a backup runs against a real pure-ftpd
    THEN the backup completes, the mail arrives, and the dead target's message ends failed
         after its retries with the reason recorded (and no secret in it)
    """
    dead = add_target(f"json://127.0.0.1:{free_port()}/hook?+X-Token=s3cr3tvalue", ["backup_completed"])
    add_target("ops@example.com", ["backup_completed"])
    job = make_job(native_destination, home_account)

    with django_capture_on_commit_callbacks(execute=True):
        item = run_job(job)

    assert item.status == QueueItem.Status.COMPLETED, item.error
    mails = smtp_server.wait_for(1)
    assert len(mails) == 1
    assert "Backup completed" in mails[0]["Subject"]
    failed = Notification.objects.get(target=dead)
    assert failed.status == Notification.Status.FAILED
    assert failed.attempts == notifications.MAX_ATTEMPTS
    assert failed.error
    dead.refresh_from_db()
    assert dead.last_error
    assert "s3cr3tvalue" not in failed.error + dead.last_error + dead.url_display


@pytest.mark.peer
def test_a_client_gets_mail_only_for_their_own_restores(
    smtp_server,
    eager_tasks,
    restore_native_destination,
    restore_account,
    tmp_path,
    django_capture_on_commit_callbacks,
) -> None:
    """
    GIVEN two clients with email addresses, alice owning the account, bob owning none
    WHEN alice restores her account, and an admin restores it too
    THEN alice gets one mail about her restore with its link; bob and the admin's restore
         produce no mail for any client
    """
    users = get_user_model()
    alice = users.objects.create_user("notify-alice", email="alice@example.com", password="pw-alice-1")
    users.objects.create_user("notify-bob", email="bob@example.com", password="pw-bob-1")
    admin = users.objects.create_user("notify-admin", email="admin@example.com", is_staff=True)
    restore_account.owner = alice
    restore_account.save()
    backup = make_native_backup(restore_native_destination, restore_account)

    with django_capture_on_commit_callbacks(execute=True):
        mine = run_restore(backup.snapshot, {"whole_account": True}, user=alice)
    with django_capture_on_commit_callbacks(execute=True):
        theirs = run_restore(backup.snapshot, {"whole_account": True}, user=admin)

    assert mine.status == theirs.status == QueueItem.Status.COMPLETED, (mine.error, theirs.error)
    mails = smtp_server.wait_for(1)
    assert [m["To"] for m in mails] == ["alice@example.com"]
    assert smtp_server.envelopes[0][1] == ["alice@example.com"]
    assert restore_account.username in mails[0].get_content()
    assert f"Restored into: {mine.result['folder']}" in mails[0].get_content()
    assert f"https://panel.example/queue/{mine.pk}/" in mails[0].get_content()


def test_notify_tells_the_targets_that_want_the_event_and_only_them(smtp_server, eager_tasks) -> None:
    """
    GIVEN one target for account_removed and one for integrity_problem
    WHEN other work calls notify() for each event
    THEN each target gets its own event's message with the account, error and hint
    """
    add_target("accounts@example.com", ["account_removed"])
    add_target("integrity@example.com", ["integrity_problem"])
    with pytest.raises(ValueError, match="unknown notification event"):
        notifications.notify("made_up", title="x")

    with _commit():
        notifications.notify("account_removed", title="Account removed from the server", account="carol")
        notifications.notify(
            "integrity_problem",
            title="A backup does not match its manifest",
            account="dave",
            error="pack 3 is 12 bytes short",
            hint="Run a full backup of dave.",
        )

    mails = smtp_server.wait_for(2)
    by_address = {m["To"]: m for m in mails}
    assert set(by_address) == {"accounts@example.com", "integrity@example.com"}
    assert "carol" in by_address["accounts@example.com"].get_content()
    text = by_address["integrity@example.com"].get_content()
    assert "dave" in text
    assert "pack 3 is 12 bytes short" in text
    assert "Hint: Run a full backup of dave." in text


def test_disabled_targets_and_other_events_get_nothing(smtp_server, eager_tasks) -> None:
    add_target("off@example.com", ["account_removed"]).__class__.objects.update(enabled=False)
    add_target("other@example.com", ["backup_failed"])
    with _commit():
        assert notifications.notify("account_removed", title="gone", account="erin") == []
    assert smtp_server.wait_for(1, timeout=1) == []


def test_daily_summary_counts_the_last_day_and_lists_the_failures(smtp_server, eager_tasks) -> None:
    """
    GIVEN finished items of the last day (two backups completed, one failed) and an older one
    WHEN the daily summary runs
    THEN the targets that want daily_summary get one mail with those counts and the failure
    """
    add_target("daily@example.com", ["daily_summary"])
    now = timezone.now()
    for status, error, age in (
        ("completed", "", 2),
        ("completed", "", 3),
        ("failed", "frank: disk full", 4),
        ("failed", "old failure", 30),
    ):
        QueueItem.objects.create(
            kind="backup", status=status, error=error, title="nightly", finished=now - timedelta(hours=age)
        )
    with _commit():
        notifications.daily_summary(now=now)
    mails = smtp_server.wait_for(1)
    assert len(mails) == 1
    text = mails[0].get_content()
    assert "Backup: 2 completed, 1 failed" in text
    assert "frank: disk full" in text
    assert "old failure" not in text


def _commit() -> Any:
    """Run on-commit callbacks at the end of the block (tests run inside a transaction)."""
    from django.test import TestCase

    return TestCase.captureOnCommitCallbacks(execute=True)


def test_a_failing_finished_hook_never_changes_the_items_outcome(
    eager_tasks, dead_destination, home_account, monkeypatch
) -> None:
    """
    GIVEN a finished hook that raises (a notification that cannot even be created)
    WHEN a backup runs
    THEN the item still ends with its own status and error
    """
    from jobs.queue import items

    def broken(item, exc):
        raise RuntimeError("notification storage is broken")

    monkeypatch.setattr(items, "_finished_hooks", [broken, *items._finished_hooks])
    item = run_job(make_job(dead_destination, home_account))
    assert item.status == QueueItem.Status.FAILED
    assert "could not connect to" in item.error
    assert CONNECT_HINT in item.error


@pytest.mark.peer
@pytest.mark.slow
def test_a_real_worker_runs_the_failing_backup_and_sends_its_mail(
    smtp_server, webhook, dead_destination, home_account, worker, monkeypatch
) -> None:
    """
    GIVEN a real Celery worker whose mail settings point at the SMTP server
    WHEN "Run now" queues a backup that fails (the FTP server refuses connections)
    THEN the worker runs it, and the notification it queues on commit reaches both targets
    """
    from jobs.backup import cycle as backup

    monkeypatch.setenv("EMAIL_HOST", smtp_server.host)
    monkeypatch.setenv("EMAIL_PORT", str(smtp_server.port))
    monkeypatch.setenv("BACKUPSITE_URL", "https://panel.example/")
    add_target("ops@example.com", ["backup_failed"])
    add_target(webhook.url, ["backup_failed"])
    worker(concurrency=1)

    item = backup.queue_run(make_job(dead_destination, home_account))

    mails = smtp_server.wait_for(1, timeout=90)
    calls = webhook.wait_for(1, timeout=30)
    item.refresh_from_db()
    assert item.status == QueueItem.Status.FAILED
    assert len(mails) == 1
    assert len(calls) == 1
    assert home_account.username in mails[0].get_content()
    assert f"https://panel.example/queue/{item.pk}/" in calls[0]["message"]


def test_the_message_history_is_kept_thirty_days(eager_tasks) -> None:
    target = add_target("ops@example.com", [])
    now = timezone.now()
    old = Notification.objects.create(
        target=target,
        event="backup_failed",
        subject="s",
        body="b",
        status="sent",
        created=now - timedelta(days=31),
    )
    recent = Notification.objects.create(
        target=target,
        event="backup_failed",
        subject="s",
        body="b",
        status="sent",
        created=now - timedelta(days=29),
    )
    notifications.send_held_summaries(now=now)
    assert list(Notification.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not Notification.objects.filter(pk=old.pk).exists()


def test_a_backup_whose_worker_died_is_reported_failed(
    smtp_server, eager_tasks, dead_destination, home_account
) -> None:
    """
    GIVEN a running backup whose worker stopped beating two minutes ago
    WHEN the reaper marks it failed
    THEN the backup_failed target hears about it, with the reaper's explanation and the link
    """
    from jobs import queue

    add_target("ops@example.com", ["backup_failed"])
    job = make_job(dead_destination, home_account)
    stale = timezone.now() - timedelta(minutes=2)
    item = QueueItem.objects.create(
        kind="backup", status="running", job=job, destination=dead_destination, started=stale, heartbeat=stale
    )
    assert queue.reap_stale() == 1
    mails = smtp_server.wait_for(1)
    assert len(mails) == 1
    assert "stopped responding" in mails[0].get_content()
    assert f"https://panel.example/queue/{item.pk}/" in mails[0].get_content()
