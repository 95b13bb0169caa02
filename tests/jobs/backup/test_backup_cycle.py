"""Native backups against a real pure-ftpd: the incremental cycle, rotation, locks, faults."""

from __future__ import annotations

import secrets

import pytest

from destinations.formats import native
from jobs import catalog
from jobs.backup import cycle as backup
from jobs.backup import snapshots
from jobs.models import QueueItem, Snapshot
from tests.support.destinations import make_destination
from tests.support.fixtures_jobs import make_job, run_job
from tests.support.ftp_servers import DropMidTransfer
from tests.support.homes import change_home, tree_state

pytestmark = [pytest.mark.peer, pytest.mark.django_db]


def restore_into(snapshot: Snapshot, dest):
    manifest = catalog.cached_manifest(snapshot)
    assert manifest is not None
    dest.mkdir(parents=True)
    with backup.open_session(snapshot.destination) as session:
        result = native.materialise(session, snapshot.path, manifest, dest)
    assert not result.skipped, result.skipped
    return tree_state(dest)


def account_result(item: QueueItem) -> dict:
    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.log[-5:])
    (entry,) = item.result["accounts"]
    return entry


def test_incremental_cycle_over_n_plus_3_runs(native_destination, home_account, tmp_path):
    """GIVEN an incremental job keeping N=3
    WHEN it runs 6 times with the home changing between runs
    THEN runs 1-3 write a full backup each into a new slot, runs 4-6 push only the changes onto
    the oldest slot (1, 2, 3 in turn), and after every run each slot restores exactly the home
    as it was when that slot was last written."""
    job = make_job(native_destination, home_account, type="incremental", retention=3)
    home = tmp_path / home_account.username
    states: dict[str, dict] = {}
    paths: list[str] = []
    full_upload = 0
    for run in range(1, 7):
        if run > 1:
            change_home(home, run)
        expected = tree_state(home)
        item = run_job(job)
        result = account_result(item)
        paths.append(result["path"])
        states[result["path"]] = expected
        if run == 1:
            full_upload = result["uploaded"]
        if run <= 3:
            assert result["path"] not in paths[:-1], "each of the first N runs opens its own slot"
            assert result["generation"] == 1
        else:
            assert result["path"] == paths[run - 4], f"run {run} must update the slot of run {run - 3}"
            assert result["generation"] == 2
            assert result["uploaded"] < full_upload / 20, "an incremental push uploads only the changes"
        slots = Snapshot.objects.filter(job_uuid=job.uuid)
        assert slots.count() == min(run, 3)
        assert all(s.restorable for s in slots)
        for slot in slots:
            restored = restore_into(slot, tmp_path / f"restore-{run}-{slot.pk}")
            assert restored == states[slot.path], f"slot {slot.path} after run {run}"
    newest = Snapshot.objects.filter(job_uuid=job.uuid).order_by("-created").first()
    assert newest.path == paths[-1]


def test_full_backups_rotate_only_after_the_new_one_is_complete(native_destination, home_account, pure_ftpd):
    job = make_job(native_destination, home_account, type="full", retention=2)
    paths = [account_result(run_job(job))["path"] for _ in range(3)]
    assert len(set(paths)) == 3
    kept = set(Snapshot.objects.filter(job_uuid=job.uuid).values_list("path", flat=True))
    assert kept == set(paths[1:])
    root = pure_ftpd.root / native_destination.directory
    assert not (root / paths[0]).exists(), "the rotated backup is deleted from the destination"
    assert all((root / p).is_dir() for p in paths[1:])


def test_a_locked_backup_survives_rotation_and_leaves_the_cycle(native_destination, home_account, pure_ftpd):
    job = make_job(native_destination, home_account, type="incremental", retention=2)
    first = account_result(run_job(job))["path"]
    second = account_result(run_job(job))["path"]
    locked = Snapshot.objects.get(path=first)
    snapshots.set_locked(locked, True)
    locked_generation = locked.generation
    third = account_result(run_job(job))["path"]
    assert third not in (first, second), "with one slot locked, the cycle opens a new slot"
    fourth = account_result(run_job(job))["path"]
    assert fourth == second, "the oldest unlocked slot is updated, never the locked one"
    locked.refresh_from_db()
    assert locked.locked
    assert locked.generation == locked_generation
    assert locked.restorable
    assert (pure_ftpd.root / native_destination.directory / first).is_dir()
    assert Snapshot.objects.filter(job_uuid=job.uuid, locked=False).count() == 2


def test_full_rotation_never_deletes_a_locked_backup(native_destination, home_account):
    job = make_job(native_destination, home_account, type="full", retention=1)
    first = account_result(run_job(job))["path"]
    snapshots.set_locked(Snapshot.objects.get(path=first), True)
    run_job(job)
    run_job(job)
    remaining = set(Snapshot.objects.filter(job_uuid=job.uuid).values_list("path", flat=True))
    assert first in remaining
    assert len(remaining) == 2, "the locked backup plus the one unlocked backup kept"


@pytest.fixture
def dropping_destination(db, fault_ftp_server, redis_settings):
    def make(**options):
        server = fault_ftp_server(DropMidTransfer, **options)
        destination = make_destination(
            server, name=f"drop-{secrets.token_hex(3)}", timeout=5, retries=3, concurrency=1, ssl=False
        )
        return server, destination

    return make


def test_a_connection_cut_mid_upload_is_retried_into_a_complete_backup(
    dropping_destination, home_account, tmp_path, fast_retries
):
    server, destination = dropping_destination(drop_after=1_000_000, faults=1, commands={"STOR", "APPE"})
    (tmp_path / home_account.username / "random.bin").write_bytes(secrets.token_bytes(3_000_000))
    job = make_job(destination, home_account, type="full", retention=2)
    item = run_job(job)
    assert server.state.faults == 1, "the server really cut an upload"
    snapshot = Snapshot.objects.get(path=account_result(item)["path"])
    assert snapshot.restorable
    restored = restore_into(snapshot, tmp_path / "restored")
    assert restored == tree_state(tmp_path / home_account.username)


def test_uploads_that_keep_failing_fail_the_run_and_keep_the_previous_backups(
    dropping_destination, home_account, tmp_path, fast_retries
):
    # Each attempt is cut after 100 kB: resuming makes progress, but not enough within the retries.
    server, destination = dropping_destination(drop_after=100_000, faults=0, commands={"STOR", "APPE"})
    job = make_job(destination, home_account, type="incremental", retention=1)
    good = account_result(run_job(job))["path"]
    before = tree_state(tmp_path / home_account.username)
    change_home(tmp_path / home_account.username, 3)
    (tmp_path / home_account.username / "fresh.bin").write_bytes(secrets.token_bytes(3_000_000))
    server.options["faults"] = 1000  # from now on every upload is cut
    failed = run_job(job)
    assert failed.status == QueueItem.Status.FAILED
    slot = Snapshot.objects.get(path=good)
    assert slot.restorable, "the slot's previous generation stays restorable"
    assert restore_into(slot, tmp_path / "after-failure") == before
    server.options["faults"] = 0
    server.state.faults = 0
    done = run_job(job)
    assert account_result(done)["path"] == good, "the next run finishes the same slot"
    slot.refresh_from_db()
    assert restore_into(slot, tmp_path / "finished") == tree_state(tmp_path / home_account.username)


def test_databases_are_dumped_and_load_back_with_the_same_rows(
    native_destination, home_account, account_database, mysql_server, tmp_path
):
    job = make_job(native_destination, home_account, type="full", retention=1, include_databases=True)
    item = run_job(job)
    snapshot = Snapshot.objects.get(path=account_result(item)["path"])
    assert {
        "kind": "databases",
        "name": account_database,
        "size": snapshot.parts[1]["size"],
    } in snapshot.parts
    manifest = catalog.cached_manifest(snapshot)
    dump = tmp_path / "dump.sql"
    with backup.open_session(native_destination) as session, open(dump, "wb") as out:
        native.download_dump(session, snapshot.path, manifest, account_database, out)
    fresh = f"{home_account.username}_check"
    mysql_server.query(f"CREATE DATABASE `{fresh}`")
    try:
        with open(dump, "rb") as source:
            mysql_server.load(fresh, source, create=False)
        original = mysql_server.query(
            "SELECT id, title, body FROM posts ORDER BY id", database=account_database
        )
        copy = mysql_server.query("SELECT id, title, body FROM posts ORDER BY id", database=fresh)
        assert len(copy) == 300
        assert copy == original
    finally:
        mysql_server.query(f"DROP DATABASE IF EXISTS `{fresh}`")
