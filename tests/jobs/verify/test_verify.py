"""Integrity checks against a real pure-ftpd: what a verify finds (deleted, truncated and
flipped packs, missing dumps, corrupt cPanel archives, orphans), what it costs, where its
findings show, and that the next incremental run repairs a damaged slot."""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from destinations import integrity
from destinations.formats import native
from destinations.models import Destination
from jobs import catalog, queue, schedules
from jobs.models import Notification, NotificationTarget, QueueItem, Snapshot
from jobs.reindex import sync as reindex
from jobs.verify import check as verify
from tests.support.cpanel_archives import make_account_archive
from tests.support.destinations import make_cpanel_destination
from tests.support.fakes import Counting, FakeSession, write_test_backup
from tests.support.fixtures_jobs import make_job, run_job
from tests.support.fixtures_restore import restored_folder, run_restore

pytestmark = [pytest.mark.peer, pytest.mark.django_db]


def run_verify(destination: Destination, read_percent: int) -> QueueItem:
    item = verify.queue_verify(destination, read_percent)
    queue.run_item(item.pk, QueueItem.Kind.VERIFY, verify.run)
    item.refresh_from_db()
    return item


def stored(destination: Destination, snapshot: Snapshot, pure_ftpd: Any) -> Path:
    return pure_ftpd.root / destination.directory / snapshot.path


def manifest_of(snapshot: Snapshot) -> native.Manifest:
    manifest = catalog.cached_manifest(snapshot)
    assert manifest is not None
    return manifest


def raw_chunk(manifest: native.Manifest) -> native.ChunkRef:
    """A chunk stored raw (random bytes: zstd saves nothing), whose damage only the file's sha256 shows."""
    for entry in manifest.entries:
        for chunk in entry.chunks:
            if chunk.codec == "raw" and chunk.stored > 1000:
                return chunk
    raise AssertionError("no raw chunk in this backup")


def flip_byte(path: Path, offset: int) -> None:
    stat = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def referenced_bytes(manifest: native.Manifest) -> int:
    chunks = {(c.pack, c.offset): c.stored for e in manifest.entries for c in e.chunks}
    return sum(chunks.values()) + sum(db.stored for db in manifest.databases)


def problems_of(snapshot: Snapshot) -> list[str]:
    snapshot.refresh_from_db()
    return [f"{p['path']}: {p['problem']}" for p in snapshot.verify_problems]


@pytest.fixture
def admin_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser(
        f"admin-{secrets.token_hex(3)}", password="pw-verify-1"
    )
    client.force_login(admin)
    return client


def test_an_undamaged_destination_verifies_clean_reading_every_byte_at_100(
    native_destination, home_account, account_database
):
    """GIVEN two clean backups with a dump WHEN verified at 100% THEN nothing is reported, every
    referenced byte was read once, and the backups and the destination record it."""
    job = make_job(native_destination, home_account, type="full", retention=2, include_databases=True)
    assert run_job(job).status == "completed"
    assert run_job(job).status == "completed"
    snapshots = list(Snapshot.objects.filter(destination=native_destination))
    item = run_verify(native_destination, 100)
    assert item.status == "completed", (item.error, item.log[-5:])
    assert item.result["ok"] is True
    assert item.result["damaged"] == []
    assert item.result["orphans"] == []
    expected = sum(referenced_bytes(manifest_of(s)) for s in snapshots)
    assert item.result["bytes_read"] == expected
    for snapshot in snapshots:
        snapshot.refresh_from_db()
        assert snapshot.verified_at is not None
        assert snapshot.verify_problems == []
        assert not snapshot.damaged
    native_destination.refresh_from_db()
    assert native_destination.verified_at is not None
    assert native_destination.verify_result["ok"] is True
    assert native_destination.verify_result["queue_item"] == item.pk


def test_verify_finds_deleted_truncated_and_flipped_packs_a_missing_dump_and_orphans(
    native_destination, home_account, account_database, pure_ftpd, admin_client
):
    job = make_job(native_destination, home_account, type="full", retention=3, include_databases=True)
    for _ in range(3):
        assert run_job(job).status == "completed"
    first, second, third = Snapshot.objects.filter(destination=native_destination).order_by("created")
    # first: a deleted pack and a deleted dump
    m1 = manifest_of(first)
    deleted_pack = m1.packs[0].name
    (stored(native_destination, first, pure_ftpd) / "packs" / deleted_pack).unlink()
    dump = m1.databases[0].object
    (stored(native_destination, first, pure_ftpd) / dump).unlink()
    # second: a truncated pack
    m2 = manifest_of(second)
    cut = stored(native_destination, second, pure_ftpd) / "packs" / m2.packs[-1].name
    os.truncate(cut, cut.stat().st_size - 100)
    # third: one flipped byte inside a raw chunk (same size, same time), and orphans
    m3 = manifest_of(third)
    chunk = raw_chunk(m3)
    flipped = stored(native_destination, third, pure_ftpd) / "packs" / chunk.pack
    flip_byte(flipped, chunk.offset + chunk.stored // 2)
    (stored(native_destination, third, pure_ftpd) / "packs" / "stray.pack").write_bytes(b"x" * 10)
    stray_folder = (
        pure_ftpd.root / native_destination.directory / home_account.username / "20200101T000000Z-deadbeef"
    )
    stray_folder.mkdir()

    target = NotificationTarget.objects.create(
        name=f"ops-{secrets.token_hex(3)}", url_display="mailto:ops@example.com", events=["integrity_problem"]
    )

    item = run_verify(native_destination, 100)

    assert item.status == "partial"
    assert item.error == "3 backups damaged"
    told = Notification.objects.get(target=target, event="integrity_problem")
    assert "3 damaged backups" in told.subject
    assert told.queue_item_id == item.pk
    assert problems_of(first) == [
        f"{first.path}/packs/{deleted_pack}: missing",
        f"{first.path}/{dump}: missing",
    ]
    assert problems_of(second) == [
        f"{second.path}/packs/{m2.packs[-1].name}: {cut.stat().st_size} bytes, "
        f"the manifest says {m2.packs[-1].size}"
    ]
    third_problems = problems_of(third)
    assert f"{third.path}/packs/stray.pack: orphan: no manifest refers to it (kept)" in third_problems
    sha = [p for p in third_problems if "sha256 does not match" in p]
    assert len(sha) == 1
    assert sha[0].startswith(f"{third.path}/packs/{chunk.pack}: ")
    assert {d["snapshot"] for d in item.result["damaged"]} == {first.pk, second.pk, third.pk}
    assert {
        "path": f"{home_account.username}/20200101T000000Z-deadbeef",
        "problem": "orphan: no indexed backup (kept)",
    } in item.result["orphans"]
    assert stray_folder.exists(), "orphans are reported, never deleted"
    assert (flipped.parent / "stray.pack").exists()
    assert any("sha256 does not match" in line for line in item.log)
    native_destination.refresh_from_db()
    assert native_destination.verify_result["ok"] is False
    assert native_destination.verify_result["damaged"] == 3

    # Shown as damaged: the backups list, the backup's page, the restore's confirm page, the API.
    page = admin_client.get(reverse("jobs:snapshots")).content.decode()
    assert page.count("damaged-badge") == 3
    detail = admin_client.get(reverse("jobs:snapshot-detail", args=[second.pk])).content.decode()
    assert 'id="damaged-alert"' in detail
    assert "the manifest says" in detail
    status = admin_client.get(reverse("destinations:status", args=[native_destination.pk])).content.decode()
    assert "3 damaged" in status
    assert status.count("damaged-badge") == 3
    api = APIClient()
    api.force_authenticate(_admin())
    body = api.get(f"/api/v1/snapshots/{first.pk}/").json()
    assert body["damaged"] is True
    assert body["problems"][0] == {"path": f"{first.path}/packs/{deleted_pack}", "problem": "missing"}
    assert body["verified_at"]


def _admin() -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(is_superuser=True).first()


def test_the_next_incremental_run_repairs_a_damaged_slot(native_destination, home_account, pure_ftpd):
    """GIVEN a slot whose pack lost a byte and another whose pack is gone WHEN verify flags them
    and the job runs again THEN the run stores the affected files again and a verify is clean."""
    job = make_job(native_destination, home_account, type="incremental", retention=1)
    assert run_job(job).status == "completed"
    slot = Snapshot.objects.get(destination=native_destination)
    manifest = manifest_of(slot)
    chunk = raw_chunk(manifest)
    flip_byte(stored(native_destination, slot, pure_ftpd) / "packs" / chunk.pack, chunk.offset + 10)
    assert run_verify(native_destination, 100).status == "partial"
    slot.refresh_from_db()
    assert slot.damaged

    item = run_job(job)  # nothing changed in the home: only the damaged pack's files are sent
    assert item.status == "completed", item.error
    slot.refresh_from_db()
    assert slot.generation == manifest.generation + 1
    assert not slot.damaged
    assert slot.verified_at is None, "a new generation forgets the old findings"
    assert chunk.pack not in {c.pack for e in manifest_of(slot).entries for c in e.chunks}
    assert item.files_unchanged > 0, "files in intact packs were kept"

    clean = run_verify(native_destination, 100)
    assert clean.status == "completed", clean.result
    slot.refresh_from_db()
    assert slot.verify_problems == []


def test_a_restore_of_a_damaged_backup_warns_and_restores_what_is_intact(
    native_destination, home_account, pure_ftpd, admin_client, django_user_model
):
    job = make_job(native_destination, home_account, type="full", retention=1)
    assert run_job(job).status == "completed"
    snapshot = Snapshot.objects.get(destination=native_destination)
    manifest = manifest_of(snapshot)
    big = next(e for e in manifest.entries if len(e.chunks) > 1)  # big.log: packs of its own
    (stored(native_destination, snapshot, pure_ftpd) / "packs" / big.chunks[-1].pack).unlink()
    run_verify(native_destination, 0)
    snapshot.refresh_from_db()
    assert snapshot.damaged
    page = admin_client.post(
        reverse("jobs:snapshot-restore", args=[snapshot.pk]), {"whole_account": "1", "target": "new_folder"}
    ).content.decode()
    assert 'id="damaged-alert"' in page, "the confirm page warns"
    # The account's client sees it too: on the account's backups and on the backup's page.
    client_user = django_user_model.objects.create_user(f"cl-{secrets.token_hex(3)}", password="pw-verify-3")
    home_account.owner = client_user
    home_account.save()
    as_client = Client()
    as_client.force_login(client_user)
    listed = as_client.get(reverse("jobs:account-backups", args=[home_account.pk])).content.decode()
    assert listed.count("damaged-badge") == 1
    shown = as_client.get(reverse("jobs:snapshot-detail", args=[snapshot.pk])).content.decode()
    assert 'id="damaged-alert"' in shown
    item = run_restore(snapshot, {"whole_account": True, "target": "new_folder"}, _admin())
    assert item.status == "partial", (item.status, item.error)
    assert any("Warning: this backup is damaged" in line for line in item.log), "the queue log warns"
    folder = restored_folder(item)
    restored = sum(1 for p in folder.rglob("*") if p.is_file())
    assert restored > 10, "the files in intact packs were restored"
    assert not (folder / "big.log").exists()
    assert "big.log" in str(item.result), "the file of the missing pack is listed as skipped"


def test_verify_of_cpanel_archives_finds_a_corrupt_and_a_missing_archive(
    db, pure_ftpd, ftp_dir, redis_settings
):
    destination = make_cpanel_destination(pure_ftpd, ftp_dir, timeout=10, retries=1)
    folder = pure_ftpd.root / ftp_dir / "2025-07-01" / "accounts"
    folder.mkdir(parents=True)
    archives = [
        make_account_archive(folder / f"vfy{n}.tar.gz", f"vfy{n}", seed=n, size_scale=0.2) for n in range(3)
    ]
    item = reindex.queue_reindex(destination)
    queue.run_item(item.pk, QueueItem.Kind.REINDEX, reindex.run)
    assert Snapshot.objects.filter(destination=destination).count() == 3
    clean = run_verify(destination, 100)
    assert clean.status == "completed", clean.result
    corrupt, gone, intact = archives
    size = corrupt.path.stat().st_size
    flip_byte(corrupt.path, size // 2)
    gone.path.unlink()

    item = run_verify(destination, 100)

    assert item.status == "partial"
    by_path = {s.path: problems_of(s) for s in Snapshot.objects.filter(destination=destination)}
    rel = f"2025-07-01/accounts/{corrupt.path.name}"
    assert len(by_path[rel]) == 1
    assert "does not read to the end" in by_path[rel][0]
    rel_gone = f"2025-07-01/accounts/{gone.path.name}"
    assert by_path[rel_gone] == [f"{rel_gone}: missing"]
    assert by_path[f"2025-07-01/accounts/{intact.path.name}"] == []


class _Counted:
    """open_session stand-in: the real session, its calls counted."""

    def __init__(self, inner: Any, counter: list[Counting]) -> None:
        self.counting = Counting(inner)
        counter.append(self.counting)
        self.inner = inner

    def __enter__(self) -> Counting:
        return self.counting

    def __exit__(self, *exc: object) -> None:
        self.inner.close()


@pytest.fixture
def counted_sessions(monkeypatch) -> list[Counting]:
    from destinations.sessions import open_session

    counters: list[Counting] = []
    monkeypatch.setattr(
        verify, "open_session", lambda destination: _Counted(open_session(destination), counters)
    )
    return counters


def test_a_verify_at_0_percent_costs_listings_only_and_at_100_reads_every_byte_once(
    native_destination, home_account, account_database, counted_sessions
):
    """Cost: with read_percent 0, each backup costs the listings of its folder, packs/ and db/
    (no download: the panel's manifest stands in when size and generation match); with 100,
    every referenced byte (and each manifest) is downloaded once."""
    job = make_job(native_destination, home_account, type="full", retention=4, include_databases=True)
    for _ in range(4):
        assert run_job(job).status == "completed"
    snapshots = list(Snapshot.objects.filter(destination=native_destination))

    assert run_verify(native_destination, 0).status == "completed"
    calls = counted_sessions[-1].calls
    # root + the account folder (orphans), then per backup: folder, packs/, db/
    assert calls["listdir"] == 2 + 3 * len(snapshots)
    assert calls["download"] == 0
    assert calls["size"] == 0
    assert calls["stat"] == 0

    assert run_verify(native_destination, 100).status == "completed"
    counting = counted_sessions[-1]
    manifests = sum(manifest_of(s).stored_size for s in snapshots)
    assert counting.downloaded == sum(referenced_bytes(manifest_of(s)) for s in snapshots) + manifests
    assert counting.calls["listdir"] == 2 + 3 * len(snapshots)


def _fake_backup(tmp_path: Path, pack_size: int = 64 * 1024) -> tuple[FakeSession, native.Manifest]:
    session = FakeSession(tmp_path / "destination", max_connections=1)
    home = tmp_path / "home"
    home.mkdir()
    for number in range(40):
        (home / f"f{number}.bin").write_bytes(os.urandom(30_000))
        (home / f"t{number}.txt").write_bytes(b"compressible line %d\n" % number * 2000)
    return session, _write_backup(session, home, pack_size)


def _write_backup(session: FakeSession, home: Path, pack_size: int) -> native.Manifest:
    return write_test_backup(session, home, account="carol", job_uuid="j", pack_size=pack_size)


def test_a_flipped_byte_in_a_compressed_chunk_is_found_by_its_frame(tmp_path):
    session, manifest = _fake_backup(tmp_path)
    chunk = next(c for e in manifest.entries for c in e.chunks if c.codec == "zstd")
    flip_byte(session.root / manifest.path / "packs" / chunk.pack, chunk.offset + chunk.stored // 2)
    with session.connection() as conn:
        result = integrity.check_native_backup(conn, manifest.path, integrity.Sample(100))
    assert [p["path"] for p in result.problems] == [f"{manifest.path}/packs/{chunk.pack}"]
    assert chunk.pack in result.damaged_packs


def test_a_restore_skips_the_files_of_a_pack_cut_short_and_restores_the_rest(tmp_path):
    """A truncated pack used to stop the whole restore; now only its unfinished files are skipped."""
    session, manifest = _fake_backup(tmp_path)
    pack = manifest.packs[0]
    os.truncate(session.root / manifest.path / "packs" / pack.name, pack.size - 50)
    hit = {e.display for e in manifest.entries if any(c.pack == pack.name for c in e.chunks)}
    (tmp_path / "out").mkdir()
    result = native.materialise(session, manifest.path, manifest, tmp_path / "out")
    skipped = {path for path, _reason in result.skipped}
    assert skipped
    assert skipped <= hit
    assert result.files == sum(1 for e in manifest.entries if e.type == "f") - len(skipped)


def test_a_listing_cut_short_is_completed_with_size_never_taken_as_missing(tmp_path):
    """pure-ftpd cuts listings at 2,000 entries: packs beyond the cut are asked for with SIZE."""
    session = FakeSession(tmp_path / "destination", max_connections=1)
    home = tmp_path / "home"
    home.mkdir()
    for number in range(40):
        (home / f"f{number}.bin").write_bytes(os.urandom(30_000))
    manifest = _write_backup(session, home, 64 * 1024)
    assert len(manifest.packs) > 10
    counting = Counting(FakeSession(tmp_path / "destination", max_connections=1, listing_limit=10))
    with counting.connection() as conn:
        result = integrity.check_native_backup(conn, manifest.path, integrity.Sample(0))
    assert result.ok, result.problems
    assert counting.calls["size"] == len(manifest.packs) - 10 + 0  # only those beyond the cut


def test_the_verify_api_validates_read_percent_and_answers_a_queue_item(
    native_destination, django_user_model
):
    admin = django_user_model.objects.create_superuser(f"api-{secrets.token_hex(3)}", password="pw-verify-2")
    api = APIClient()
    api.force_authenticate(admin)
    url = f"/api/v1/destinations/{native_destination.pk}/verify/"
    for bad in ("5", 101, -1, True, 5.5, None):
        answer = api.post(url, {"read_percent": bad}, format="json")
        assert answer.status_code == 400, bad
        assert "read_percent" in answer.json()
    assert api.post(url, {"read_percent": 5, "percent": 1}, format="json").status_code == 400
    assert not QueueItem.objects.filter(kind="verify").exists(), "a refused request queues nothing"
    with _no_dispatch():
        answer = api.post(url, {"read_percent": 25}, format="json")
        again = api.post(url, {}, format="json")
    assert answer.status_code == 202
    body = answer.json()
    assert body["kind"] == "verify"
    assert body["status"] == "pending"
    assert QueueItem.objects.get(pk=body["id"]).params == {"read_percent": 25}
    assert again.json()["id"] == body["id"], "a pending check is answered, not queued twice"


@contextlib.contextmanager
def _no_dispatch() -> Iterator[None]:
    from unittest import mock

    with mock.patch("jobs.queue.dispatch_item"):
        yield


def test_each_destination_gets_a_weekly_verify_schedule_in_beat(native_destination):
    task = PeriodicTask.objects.get(name=schedules.verify_task_name(native_destination.pk))
    assert task.task == "jobs.tasks.scheduled_verify"
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "4", "0")
    assert native_destination.verify_read_percent == 5
    native_destination.verify_schedule = ""
    native_destination.save()
    assert not PeriodicTask.objects.filter(name=schedules.verify_task_name(native_destination.pk)).exists()


def test_successive_checks_sample_different_files_and_cover_them_all():
    names = [f"file-{n}" for n in range(2000)]
    seen: set[str] = set()
    runs = []
    for run in range(20):
        sample = integrity.Sample(5, cursor=run * 5 % 100, salt=b"k")
        picked = {n for n in names if sample.picks(n)}
        runs.append(picked)
        seen |= picked
    assert seen == set(names), "20 runs of 5% read everything"
    assert all(40 < len(p) < 160 for p in runs), [len(p) for p in runs]
    assert all(not (a & b) for a, b in itertools.pairwise(runs)), "successive runs differ"
