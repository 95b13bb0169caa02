"""Validate counts against the destination's connection cap, like every other connection."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from rest_framework.test import APIClient

from destinations.ftp.leases import current_holder, holding_for
from destinations.models import Destination
from destinations.sessions import open_session
from jobs import queue
from jobs.models import Account, BackupJob, QueueItem
from tests.support.destinations import make_destination

pytestmark = [pytest.mark.django_db, pytest.mark.peer]


@pytest.fixture
def destination(pure_ftpd: Any, ftp_dir: str, redis_settings: str) -> Destination:
    return make_destination(pure_ftpd, ftp_dir, name="capped", ssl=False, timeout=2, retries=0, concurrency=1)


@pytest.fixture
def backup_item(destination: Destination, tmp_path: Any) -> QueueItem:
    account = Account.objects.create(username="capbob", home=str(tmp_path))
    job = BackupJob.objects.create(name="nightly", destination=destination)
    job.accounts.set([account])
    return queue.enqueue(
        QueueItem.Kind.BACKUP, dispatch=False, title=job.name, job=job, destination=destination
    )


def _validate(admin_user: Any, destination: Destination) -> tuple[dict[str, Any], float]:
    api = APIClient()
    api.force_authenticate(admin_user)
    started = time.monotonic()
    body = api.post(f"/api/v1/destinations/{destination.pk}/validate/").json()
    return body, time.monotonic() - started


def test_validate_during_a_backup_at_concurrency_1_waits_for_the_connection(
    admin_user: Any, destination: Destination, backup_item: QueueItem
) -> None:
    """
    GIVEN a destination with concurrency 1 and a running backup holding its one connection
    WHEN an admin presses Validate and the backup gives the connection back 1 s later
    THEN Validate waited for it (no second session was opened meanwhile) and succeeds
    """
    released = threading.Event()
    with holding_for(queue.lease_holder(backup_item)):
        session = open_session(destination)
    with session, session.connection() as conn:
        assert conn.lease is not None
        assert conn.listdir("") is not None  # a live, logged-in session on pure-ftpd

        def finish_backup() -> None:
            time.sleep(1.0)
            session.close()
            conn.close()
            released.set()

        threading.Thread(target=finish_backup, daemon=True).start()
        body, took = _validate(admin_user, destination)
    assert released.is_set()
    assert body["ok"] is True, body
    assert took >= 0.9  # it waited for the backup's connection instead of opening a second one


def test_validate_that_cannot_get_a_connection_says_which_work_holds_it(
    admin_user: Any, destination: Destination, backup_item: QueueItem
) -> None:
    """
    GIVEN a destination with concurrency 1 whose connection a running backup keeps
    WHEN Validate cannot get a connection within the destination's timeout (2 s)
    THEN its Connect step, the only one, fails naming the backup that holds the connection
    """
    with holding_for(queue.lease_holder(backup_item)):
        session = open_session(destination)
    with session, session.connection():
        body, took = _validate(admin_user, destination)
    assert body["ok"] is False
    [connect] = body["checks"]
    assert connect["name"] == "Connect"
    assert connect["detail"].startswith(
        f"All 1 connections to this destination are in use by: Backup #{backup_item.pk} (nightly);"
    )
    assert "within 2 s" in connect["detail"]
    assert 1.9 <= took < 5


def test_a_queue_item_runs_under_its_own_lease_description(backup_item: QueueItem) -> None:
    """The queue's runner names the work for every lease its body takes."""
    seen: list[str] = []

    def body(item: QueueItem, reporter: queue.Reporter) -> dict[str, Any]:
        seen.append(current_holder())
        return {}

    queue.run_item(backup_item.pk, QueueItem.Kind.BACKUP, body)
    assert seen == [f"Backup #{backup_item.pk} (nightly)"]
    assert current_holder() == ""


@pytest.mark.django_db(transaction=True)  # the item's heartbeat thread writes from its own connection
def test_work_queued_behind_a_backup_logs_which_work_holds_the_connection(
    destination: Destination, backup_item: QueueItem
) -> None:
    """
    GIVEN a destination with concurrency 1 (timeout 2 s) whose connection a backup holds
    WHEN a restore's worker needs a connection and the backup gives it back only after 3 s
    THEN the restore waits (it has no deadline) and its log says, once, what it waits for
    """
    restore_item = queue.enqueue(
        QueueItem.Kind.RESTORE, dispatch=False, title="Restore capbob", destination=destination
    )
    with holding_for(queue.lease_holder(backup_item)):
        backup_session = open_session(destination)
    with backup_session, backup_session.connection() as backup_conn:
        threading.Timer(3.0, backup_conn.close).start()  # the backup ends: its lease is released

        def body(item: QueueItem, reporter: queue.Reporter) -> dict[str, Any]:
            with open_session(destination) as session, session.connection() as conn:
                conn.listdir("")
            return {}

        started = time.monotonic()
        queue.run_item(restore_item.pk, QueueItem.Kind.RESTORE, body)
        took = time.monotonic() - started
    restore_item.refresh_from_db()
    assert restore_item.status == QueueItem.Status.COMPLETED, restore_item.error
    assert took >= 2.9
    waits = [line for line in restore_item.log if "Waiting for a connection" in line]
    assert len(waits) == 1
    assert waits[0].endswith(
        f"Waiting for a connection: All 1 connections to this destination are in use by: "
        f"Backup #{backup_item.pk} (nightly)."
    )


@pytest.mark.django_db(transaction=True)
def test_a_clients_work_waiting_for_a_connection_is_not_told_whose_work_holds_it(
    destination: Destination, django_user_model: Any, tmp_path: Any
) -> None:
    """
    GIVEN client alice's restore waiting behind another client's restore of account alice_x
    WHEN her worker logs the wait
    THEN her log says it waits, without the other work's name (nor its account's)
    """
    alice = django_user_model.objects.create_user("capclient-alice", password="x-Alice-pw-1")
    other = django_user_model.objects.create_user("capclient-other", password="x-Other-pw-1")
    theirs = Account.objects.create(username="capalice_x", home=str(tmp_path), owner=other)
    mine = Account.objects.create(username="capalice", home=str(tmp_path), owner=alice)
    their_item = queue.enqueue(
        QueueItem.Kind.RESTORE,
        dispatch=False,
        title="restore capalice_x from 2025-07-04 00:00",
        account=theirs,
        destination=destination,
        requested_by=other,
    )
    my_item = queue.enqueue(
        QueueItem.Kind.RESTORE,
        dispatch=False,
        title="restore capalice from 2025-07-04 00:00",
        account=mine,
        destination=destination,
        requested_by=alice,
    )
    with holding_for(queue.lease_holder(their_item)):
        their_session = open_session(destination)
    with their_session, their_session.connection() as their_conn:
        threading.Timer(3.0, their_conn.close).start()

        def body(item: QueueItem, reporter: queue.Reporter) -> dict[str, Any]:
            with open_session(destination) as session, session.connection() as conn:
                conn.listdir("")
            return {}

        queue.run_item(my_item.pk, QueueItem.Kind.RESTORE, body)
    my_item.refresh_from_db()
    assert my_item.status == QueueItem.Status.COMPLETED, my_item.error
    waits = [line for line in my_item.log if "Waiting for a connection" in line]
    assert len(waits) == 1
    assert not [line for line in my_item.log if "capalice_x" in line or f"#{their_item.pk}" in line]
    assert waits[0].endswith(queue.CLIENT_WAIT_NOTICE)
