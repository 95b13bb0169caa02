"""Upgrading an install: a database made by the schema before the layers were separated, with
rows in it, migrates to today's schema and keeps every row, reference and run lock; the task
names its beat schedules store still name registered tasks."""

from datetime import UTC, datetime
from typing import Any

import pytest
from celery import current_app
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

# The last migrations of the schema before Snapshot moved to jobs and run locks moved to the queue.
BEFORE = [("destinations", "0004_integrity_check"), ("jobs", "0005_verify_kind")]
WHEN = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def _migrate(targets: list[tuple[str, str]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


def _latest() -> list[tuple[str, str]]:
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_a_database_of_the_previous_schema_upgrades_with_its_rows_references_and_locks() -> None:
    old = _migrate(BEFORE)
    User = old.get_model("auth", "User")
    Destination = old.get_model("destinations", "Destination")
    Snapshot = old.get_model("destinations", "Snapshot")
    Account = old.get_model("jobs", "Account")
    BackupJob = old.get_model("jobs", "BackupJob")
    QueueItem = old.get_model("jobs", "QueueItem")

    client = User.objects.create(username="alice")
    destination = Destination.objects.create(
        name="storage box", engine="native", directory="backups", host="ftp.example.net", username="backup"
    )
    account = Account.objects.create(username="bob", home="/home/bob", owner=client)
    job = BackupJob.objects.create(name="nightly", destination=destination)
    job.accounts.add(account)
    snapshot = Snapshot.objects.create(
        destination=destination,
        account=account,
        account_name="bob",
        engine="native",
        path="bob/2026-11-30T030000Z",
        created=WHEN,
        size=1234,
        state="complete",
        parts=["home"],
    )
    running = QueueItem.objects.create(kind="backup", status="running", job=job, destination=destination)
    reindex = QueueItem.objects.create(kind="reindex", status="pending", destination=destination)
    finished = QueueItem.objects.create(
        kind="restore", status="completed", snapshot=snapshot, account=account
    )
    BackupJob.objects.filter(pk=job.pk).update(running=running)
    Destination.objects.filter(pk=destination.pk).update(reindexing=reindex)

    new = _migrate(_latest())
    Snapshot = new.get_model("jobs", "Snapshot")
    QueueItem = new.get_model("jobs", "QueueItem")
    ContentType = new.get_model("contenttypes", "ContentType")

    moved = Snapshot.objects.get(pk=snapshot.pk)
    assert (moved.path, moved.size, moved.state, moved.parts, moved.created) == (
        "bob/2026-11-30T030000Z",
        1234,
        "complete",
        ["home"],
        WHEN,
    )
    assert moved.account_id == account.pk
    assert moved.destination_id == destination.pk
    assert moved.account.owner.username == "alice", "the client still owns the account's backups"
    assert QueueItem.objects.get(pk=finished.pk).snapshot_id == snapshot.pk
    assert QueueItem.objects.get(pk=running.pk).lock == f"backup:job:{job.pk}", (
        "the running backup keeps its lock"
    )
    assert QueueItem.objects.get(pk=reindex.pk).lock == f"reindex:destination:{destination.pk}"
    assert QueueItem.objects.get(pk=finished.pk).lock is None
    assert ContentType.objects.filter(app_label="jobs", model="snapshot").exists()
    assert not ContentType.objects.filter(app_label="destinations", model="snapshot").exists()


@pytest.mark.django_db(transaction=True)
def test_the_upgrade_can_be_rolled_back_with_its_locks() -> None:
    new = _migrate(_latest())
    Destination = new.get_model("destinations", "Destination")
    BackupJob = new.get_model("jobs", "BackupJob")
    QueueItem = new.get_model("jobs", "QueueItem")
    destination = Destination.objects.create(
        name="box", engine="native", host="ftp.example.net", username="b"
    )
    job = BackupJob.objects.create(name="nightly", destination=destination)
    item = QueueItem.objects.create(kind="backup", status="running", job=job, lock=f"backup:job:{job.pk}")

    old = _migrate(BEFORE)
    assert old.get_model("jobs", "BackupJob").objects.get(pk=job.pk).running_id == item.pk
    _migrate(_latest())


def test_task_names_stored_in_beat_schedules_still_name_registered_tasks() -> None:
    """django-celery-beat rows store task names; they were written by the previous code."""
    stored = [
        "jobs.tasks.scheduled_backup",
        "jobs.tasks.scheduled_reindex",
        "jobs.tasks.scheduled_verify",
        "jobs.tasks.scheduled_discovery",
        "jobs.tasks.reap_stale",
        "jobs.tasks.redispatch_lost",
        "jobs.tasks.expire_downloads",
        "jobs.tasks.expire_removed_accounts",
        "jobs.tasks.collect_listing_garbage",
        "jobs.tasks.send_held_notifications",
        "jobs.tasks.daily_summary",
        # queued messages name these
        "jobs.tasks.run_backup",
        "jobs.tasks.run_rotation",
        "jobs.tasks.run_reindex",
        "jobs.tasks.run_verify",
        "jobs.tasks.run_restore",
        "jobs.tasks.run_download",
        "jobs.tasks.run_discovery",
        "jobs.tasks.sync_lock_marker",
        "jobs.tasks.send_notification",
    ]
    missing = [name for name in stored if name not in current_app.tasks]
    assert not missing
