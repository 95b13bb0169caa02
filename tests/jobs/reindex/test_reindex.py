"""Reindex against a real pure-ftpd: cPanel layouts, parts, vanished and changed archives,
hostile archives, and a native destination's index rebuilt from the destination alone."""

from __future__ import annotations

import os
import shutil

import pytest
from django.conf import settings
from django.urls import reverse
from rest_framework.test import APIClient

from destinations import listing
from destinations.formats import native
from destinations.models import Destination, ListingBlob
from destinations.sessions import open_session
from jobs import catalog, queue, schedules
from jobs.backup import snapshots
from jobs.models import Account, QueueItem, Snapshot
from jobs.reindex import sync as reindex
from tests.support.cpanel_archives import make_account_archive, make_destination_tree, make_hostile_archive
from tests.support.destinations import make_cpanel_destination
from tests.support.fixtures_jobs import make_job, run_job
from tests.support.homes import change_home, tree_state

pytestmark = [pytest.mark.peer, pytest.mark.django_db]


@pytest.fixture
def cpanel_destination(db, pure_ftpd, ftp_dir, redis_settings):
    destination = make_cpanel_destination(pure_ftpd, ftp_dir, timeout=10, retries=1)
    root = pure_ftpd.root / ftp_dir
    root.mkdir()
    return destination, root


def run_reindex(destination: Destination) -> QueueItem:
    item = reindex.queue_reindex(destination)
    queue.run_item(item.pk, QueueItem.Kind.REINDEX, reindex.run)
    item.refresh_from_db()
    return item


def test_reindex_finds_every_cpanel_layout_and_marks_incomplete_dates(cpanel_destination):
    destination, root = cpanel_destination
    made = make_destination_tree(root, accounts=2, layout="all", size_scale=0.05)
    item = run_reindex(destination)
    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.log[-5:])
    found = {s.path: s for s in Snapshot.objects.filter(destination=destination)}
    assert set(found) == {entry.path for entry in made}
    for entry in made:
        snapshot = found[entry.path]
        assert snapshot.layout == entry.layout, entry.path
        assert snapshot.account_name == entry.user
        if entry.incomplete:
            assert snapshot.state == Snapshot.State.INCOMPLETE
            assert "incomplete" in snapshot.flags
            assert not snapshot.restorable
        else:
            assert snapshot.restorable, (entry.path, snapshot.flags, snapshot.problems)
    assert set(Account.objects.filter(source="backups").values_list("username", flat=True)) == {
        "user0",
        "user1",
    }
    assert item.result["added"] == len(made)


def test_parts_sizes_and_home_listing_match_what_cpanel_wrote(cpanel_destination):
    destination, root = cpanel_destination
    folder = root / "2025-07-04" / "accounts"
    folder.mkdir(parents=True)
    generated = {
        "whm": make_account_archive(folder, "alice", size_scale=0.1),
        "old": make_account_archive(root, "carol", style="cpmove", homedir_tar=True, size_scale=0.05),
    }
    assert run_reindex(destination).status == QueueItem.Status.COMPLETED
    for archive in generated.values():
        snapshot = Snapshot.objects.get(path=archive.path.relative_to(root).as_posix())
        parts = {(p["kind"], p["name"]): p["size"] for p in snapshot.parts}
        assert parts == archive.parts, archive.path.name
        kinds = {kind for kind, _ in parts}
        assert kinds >= {"homedir", "databases", "db_users", "email_accounts", "cron", "dns_zones", "domains"}
        listed = {
            entry.path: (entry.type, entry.size if entry.type == "file" else 0, entry.target)
            for entry in listing.walk(snapshot.listing_root)
        }
        expected = {
            path: (kind, size if kind == "file" else 0, target)
            for path, (kind, size, target) in archive.home.items()
        }
        assert {p: v for p, v in listed.items() if p in expected} == expected
        assert set(expected) <= set(listed)
        cron = next(p for p in snapshot.parts if p["kind"] == "cron")
        assert all(piece in cron["text"] for piece in archive.texts[("cron", "")])


def test_a_second_reindex_of_an_unchanged_destination_reads_nothing(cpanel_destination):
    destination, root = cpanel_destination
    made = make_destination_tree(root, accounts=1, layout="whm", size_scale=0.05)
    run_reindex(destination)
    indexed = dict(Snapshot.objects.values_list("path", "indexed"))
    again = run_reindex(destination)
    assert again.result["unchanged"] == len(made)
    assert again.result["added"] == again.result["updated"] == 0
    assert again.bytes_total == 0, "no archive was downloaded"
    assert dict(Snapshot.objects.values_list("path", "indexed")) == indexed


def test_vanished_backups_leave_the_index_and_changed_ones_are_read_again(cpanel_destination):
    destination, root = cpanel_destination
    made = make_destination_tree(root, accounts=2, layout="whm", size_scale=0.05)
    run_reindex(destination)
    gone, changed = made[0].path, made[1].path
    (root / gone).unlink()
    make_account_archive(root / changed, "user1", size_scale=0.2)  # same name, new content
    item = run_reindex(destination)
    assert item.result["removed"] == 1
    assert item.result["updated"] == 1
    assert not Snapshot.objects.filter(path=gone).exists()
    assert Snapshot.objects.get(path=changed).remote_size == (root / changed).stat().st_size


HOSTILE = [
    "absolute",
    "dotdot",
    "hardlink_out",
    "symlink_write",
    "device",
    "absurd_size",
    "truncated_gzip",
    "not_tar",
]


def test_hostile_archives_are_flagged_and_fail_only_themselves(cpanel_destination, tmp_path):
    destination, root = cpanel_destination
    folder = root / "2025-07-04" / "accounts"
    folder.mkdir(parents=True)
    good = make_account_archive(folder, "alice", size_scale=0.05)
    hostile = {}
    for kind in HOSTILE:
        archive = make_hostile_archive(folder / f"evil{kind.replace('_', '')}.tar.gz", kind)
        hostile[archive.path.relative_to(root).as_posix()] = archive
    outside = tmp_path / "outside-marker"
    before = set(os.listdir(settings.DATA_DIR))
    item = run_reindex(destination)
    assert item.status == QueueItem.Status.COMPLETED, item.error
    assert Snapshot.objects.get(path=good.path.relative_to(root).as_posix()).restorable
    for path, archive in hostile.items():
        snapshot = Snapshot.objects.get(path=path)
        assert archive.flag in snapshot.flags, (path, snapshot.flags)
        assert not snapshot.restorable
        names = (
            {entry.path for entry in listing.walk(snapshot.listing_root)} if snapshot.listing_root else set()
        )
        assert not any(
            bad.removeprefix("homedir/") in names for bad in archive.bad if bad.startswith("homedir/")
        )
    assert not outside.exists()
    assert set(os.listdir(settings.DATA_DIR)) - before <= {"manifests"}, (
        "a reindex writes nothing but the index"
    )


def test_a_native_index_is_rebuilt_completely_into_an_empty_database(
    native_destination, home_account, tmp_path, pure_ftpd
):
    job = make_job(native_destination, home_account, type="incremental", retention=2)
    home = tmp_path / home_account.username
    states = {}
    for step in range(3):
        if step:
            change_home(home, step)
        state = tree_state(home)
        item = run_job(job)
        states[item.result["accounts"][0]["path"]] = state
    locked = Snapshot.objects.order_by("created").first()
    snapshots.set_locked(locked, True)
    with open_session(native_destination) as session, session.connection() as conn:
        native.set_locked(conn, locked.path, True)
    before = {
        s.path: (s.generation, s.locked, s.type, s.parts, s.size, s.created, str(s.job_uuid))
        for s in Snapshot.objects.all()
    }
    # The disaster: the panel's database is lost (a new panel on the same destination).
    Snapshot.objects.all().delete()
    Account.objects.all().delete()
    ListingBlob.objects.all().delete()
    shutil.rmtree(settings.DATA_DIR / "manifests", ignore_errors=True)
    item = run_reindex(native_destination)
    assert item.status == QueueItem.Status.COMPLETED, item.error
    after = {
        s.path: (s.generation, s.locked, s.type, s.parts, s.size, s.created, str(s.job_uuid))
        for s in Snapshot.objects.all()
    }
    assert after == before
    assert Account.objects.get(username=home_account.username).source == "backups"
    for snapshot in Snapshot.objects.all():
        assert snapshot.restorable
        dest = tmp_path / f"rebuilt-{snapshot.pk}"
        dest.mkdir()
        with open_session(native_destination) as session:
            native.materialise(session, snapshot.path, catalog.cached_manifest(snapshot), dest)
        assert tree_state(dest) == states[snapshot.path]


def test_two_reindexes_of_one_destination_never_overlap(cpanel_destination):
    destination, _ = cpanel_destination
    first = reindex.queue_reindex(destination)
    assert reindex.queue_reindex(destination).pk == first.pk, "a pending reindex is answered, not doubled"
    other = queue.enqueue(QueueItem.Kind.REINDEX, dispatch=False, destination=destination)
    QueueItem.objects.filter(pk=first.pk).update(lock=reindex.lock_key(destination.pk))
    queue.run_item(other.pk, QueueItem.Kind.REINDEX, reindex.run)
    other.refresh_from_db()
    assert other.status == QueueItem.Status.FAILED
    assert "Another reindex" in other.error


def test_reindex_api_queues_one(admin_user, cpanel_destination):
    destination, _ = cpanel_destination
    api = APIClient()
    api.force_authenticate(admin_user)
    response = api.post(f"/api/v1/destinations/{destination.pk}/reindex/")
    assert response.status_code == 202
    assert response.json()["kind"] == "reindex"
    assert api.post(f"/api/v1/destinations/{destination.pk}/reindex/").json()["id"] == response.json()["id"]


def test_an_edited_reindex_schedule_shows_up_in_beat(admin_client, cpanel_destination):
    from tests.web.test_jobs_api import beat_entry

    destination, _ = cpanel_destination
    name = schedules.reindex_task_name(destination.pk)
    form = {
        "name": destination.name,
        "engine": "cpanel",
        "directory": destination.directory,
        "host": destination.host,
        "port": destination.port,
        "username": destination.username,
        "password": "",
        "timeout": 10,
        "retries": 1,
        "concurrency": 2,
        "ssl": "on",
        "passive": "on",
        "tls_fingerprint": destination.tls_fingerprint,
        "read_only": "on",
        "reindex_schedule": "30 5 * * *",
    }
    assert admin_client.post(reverse("destinations:edit", args=[destination.pk]), form).status_code == 302
    entry = beat_entry(name)
    assert (entry.schedule._orig_minute, entry.schedule._orig_hour) == ("30", "5")
    assert entry.task == "jobs.tasks.scheduled_reindex"
    form["reindex_schedule"] = "15 6 * * 1"
    admin_client.post(reverse("destinations:edit", args=[destination.pk]), form)
    assert beat_entry(name).schedule._orig_day_of_week == "1"
    form["reindex_schedule"] = ""
    admin_client.post(reverse("destinations:edit", args=[destination.pk]), form)
    assert beat_entry(name) is None
