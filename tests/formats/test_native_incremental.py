"""Incremental pushes onto a native slot: what is uploaded, what is reclaimed, what survives a failure.

The first tests run against a real pure-ftpd; failures are staged precisely with the local fake
(tests/support/fakes.py), which is the only place it is used.
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from destinations.formats import native
from destinations.formats.native import manifest_codec as native_manifest
from destinations.ftp import FtpSession, TransientError
from tests.support.fakes import (
    Counting,
    FakeSession,
    Faults,
    LocalStore,
    Recorder,
    SqlDump,
    tree_state,
    write_test_backup,
)
from tests.support.ftp_servers import PureFtpd

MiB = 1024 * 1024
CHUNK = 64 * 1024
PACK = 256 * 1024
ACCOUNT = "carol"


@pytest.fixture
def ftp(pure_ftpd: PureFtpd, ftp_dir: str) -> Iterator[Counting]:
    session = FtpSession(pure_ftpd.settings(directory=ftp_dir), max_connections=2, create_root=True)
    yield Counting(session)
    session.close()


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Counting:
    monkeypatch.setattr("destinations.formats.native.upload._retry_pause", lambda attempt: None)
    return Counting(FakeSession(tmp_path / "destination", max_connections=2))


def make_site(home: Path, files: int = 60, size: int = 20_000) -> None:
    rng = random.Random(3)
    for number in range(files):
        folder = home / f"dir{number % 6}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file{number:03d}.bin").write_bytes(rng.randbytes(size))
    (home / "notes.txt").write_bytes(b"notes\n" * 100)


def push(
    session: Counting,
    home: Path,
    backup_id: str,
    previous: native.Manifest | None,
    progress: Recorder | None = None,
    databases: tuple[SqlDump, ...] = (),
) -> native.Manifest:
    return write_test_backup(
        session,
        home,
        account=ACCOUNT,
        backup_id=backup_id,
        job_uuid="job-1",
        job_name="incremental",
        backup_type="incremental",
        databases=list(databases),
        progress=progress or Recorder(),
        previous=previous,
        chunk_size=CHUNK,
        pack_size=PACK,
    )


def stored_objects(session: Counting, path: str) -> set[str]:
    with session.connection() as conn:
        names = {e.name for e in conn.listdir(path) if e.type == "file"}
        for folder in ("packs", "db"):
            if conn.stat(f"{path}/{folder}") is not None:
                names |= {f"{folder}/{e.name}" for e in conn.listdir(f"{path}/{folder}")}
    return names


def restore(session: Counting, manifest: native.Manifest, out: Path) -> dict[bytes, tuple[object, ...]]:
    out.mkdir()
    result = native.materialise(session, manifest.path, manifest, out)
    assert result.skipped == []
    return tree_state(out)


def touch_later(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


@pytest.mark.peer
def test_incremental_push_uploads_only_changes_and_drops_deleted_files(ftp: Counting, tmp_path: Path) -> None:
    """
    GIVEN a committed slot (generation 1) of 61 files
    WHEN one file is rewritten, one edited in place with the same size, one added and one
         deleted, and the slot is pushed again
    THEN generation 2 stores only the three changed/new files (one new pack), keeps the other
         files' chunk references, no longer lists the deleted file, the old generation's
         manifest is gone, and a restore equals the changed tree
    """
    home = tmp_path / "home"
    make_site(home)
    backup_id = native.new_backup_id()
    first = push(ftp, home, backup_id, None)

    (home / "dir0" / "file000.bin").write_bytes(b"rewritten")
    same_size = home / "dir1" / "file001.bin"
    data = bytearray(same_size.read_bytes())
    data[100:104] = b"EDIT"
    same_size.write_bytes(bytes(data))
    touch_later(same_size)
    (home / "dir2" / "added.txt").write_bytes(b"new file")
    (home / "dir3" / "file003.bin").unlink()
    ftp.reset()

    second = push(ftp, home, backup_id, first)

    assert second.generation == 2
    assert second.totals["new_bytes"] == len(b"rewritten") + 20_000 + len(b"new file")
    assert ftp.calls["upload_file"] == 2  # one pack, the manifest
    old = first.entry_map()
    new = second.entry_map()
    assert b"dir3/file003.bin" not in new
    assert new[b"dir4/file004.bin"].chunks == old[b"dir4/file004.bin"].chunks
    assert new[b"dir1/file001.bin"].sha256 != old[b"dir1/file001.bin"].sha256
    assert stored_objects(ftp, second.path) == second.referenced_objects()
    assert restore(ftp, second, tmp_path / "out") == tree_state(home)


@pytest.mark.peer
def test_unchanged_slot_push_uploads_only_a_manifest_and_new_dumps(ftp: Counting, tmp_path: Path) -> None:
    """
    GIVEN a committed slot with a database
    WHEN it is pushed again with nothing changed in the home folder
    THEN only the dump and the manifest are uploaded, no folder is listed but the slot's own,
         and the previous generation's dump is deleted after the commit
    """
    home = tmp_path / "home"
    make_site(home, files=10)
    backup_id = native.new_backup_id()
    first = push(ftp, home, backup_id, None, databases=(SqlDump("wp", b"SELECT 1;\n"),))
    ftp.reset()

    second = push(ftp, home, backup_id, first, databases=(SqlDump("wp", b"SELECT 2;\n"),))

    assert ftp.calls["upload_file"] == 1
    assert ftp.calls["open_upload"] == 1
    assert second.totals["new_bytes"] == 0
    assert stored_objects(ftp, second.path) == second.referenced_objects()
    assert "db/wp-000001.sql.zst" not in stored_objects(ftp, second.path)


@pytest.mark.peer
def test_sparse_packs_are_rewritten_from_the_source_and_deleted(ftp: Counting, tmp_path: Path) -> None:
    """
    GIVEN a slot whose 60 files of 20 KB fill several 256 KiB packs
    WHEN most files of the first pack change
    THEN that pack falls below half live: its remaining files are re-read from the local source
         into generation 2's packs, the old pack is deleted after the commit, and the restore is
         byte-identical
    """
    home = tmp_path / "home"
    make_site(home)
    backup_id = native.new_backup_id()
    first = push(ftp, home, backup_id, None)
    first_pack = first.packs[0].name
    in_first = [e for e in first.entries if e.chunks and e.chunks[0].pack == first_pack]
    for entry in in_first[: len(in_first) * 2 // 3]:
        path = home / os.fsdecode(entry.path)
        path.write_bytes(path.read_bytes()[::-1])
        touch_later(path)
    survivors = [e.path for e in in_first[len(in_first) * 2 // 3 :]]
    progress = Recorder()

    second = push(ftp, home, backup_id, first, progress=progress)

    assert first_pack not in {p.name for p in second.packs}
    assert "rewriting 1 sparse packs" in progress.text()
    assert all(second.entry_map()[path].chunks[0].pack.startswith("000002-") for path in survivors)
    assert f"packs/{first_pack}" not in stored_objects(ftp, second.path)
    assert restore(ftp, second, tmp_path / "out") == tree_state(home)


def test_failed_update_leaves_previous_generation_restorable_and_next_run_completes(
    fake: Counting, tmp_path: Path
) -> None:
    """
    GIVEN a committed slot, and a destination that fails every upload of generation 2's second pack
    WHEN the push fails half way
    THEN generation 1 is still the valid manifest and restores the old tree byte for byte;
         the next push (faults gone) removes the failed run's leftovers, commits generation 2,
         and leaves only the objects generation 2 references
    """
    home = tmp_path / "home"
    make_site(home)
    backup_id = native.new_backup_id()
    first = push(fake, home, backup_id, None)
    old_state = tree_state(home)
    for number in range(0, 60, 2):
        path = home / f"dir{number % 6}" / f"file{number:03d}.bin"
        path.write_bytes(os.urandom(20_000))
        touch_later(path)
    faults: Faults = fake.inner.faults
    faults.fail("upload_file", "*/packs/000002-00001.pack")

    with pytest.raises(TransientError):
        push(fake, home, backup_id, first)

    with fake.connection() as conn:
        current = native.read_manifest(conn, first.path)
    assert current.generation == 1
    assert restore(fake, current, tmp_path / "old") == old_state
    # A crash leaves what cleanup could not remove: put a failed run's pack and .tmp back.
    slot = fake.inner.root / first.path
    (slot / "packs" / "000002-00000.pack").write_bytes(b"partial")
    (slot / "packs" / "000002-00003.pack").write_bytes(b"partial")
    (slot / "manifest-000002.json.zst.tmp").write_bytes(b"partial")
    faults.clear()

    second = push(fake, home, backup_id, current)

    assert second.generation == 2
    assert stored_objects(fake, second.path) == second.referenced_objects()
    assert restore(fake, second, tmp_path / "new") == tree_state(home)


def test_cleanup_works_by_name_when_listings_are_cut(fake: Counting, tmp_path: Path) -> None:
    """
    GIVEN a destination that cuts every listing after 2 names (pure-ftpd does so at 2,000),
          a committed slot of several packs, and leftovers of a failed generation-2 run
    WHEN a push rewrites every file, and then the backup is deleted
    THEN the leftovers are removed before the run, the old generation's packs after the commit,
         and delete_backup removes every pack: all by name, without relying on a listing
    """
    home = tmp_path / "home"
    make_site(home)
    backup_id = native.new_backup_id()
    first = push(fake, home, backup_id, None)
    assert len(first.packs) > 3
    slot = fake.inner.root / first.path
    for name in ("000002-00000.pack", "000002-00001.pack", "000002-00004.pack"):
        (slot / "packs" / name).write_bytes(b"left by a failed run")
    for path in home.rglob("*.bin"):
        path.write_bytes(path.read_bytes()[::-1])
        touch_later(path)
    fake.inner.listing_limit = 2
    seen_before_upload: set[str] = set()
    real_upload = LocalStore.upload_file

    def upload(store: LocalStore, path: str, source: BinaryIO) -> int:
        if not seen_before_upload:
            seen_before_upload.update(p.name for p in (slot / "packs").iterdir())
        return real_upload(store, path, source)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LocalStore, "upload_file", upload)
        second = push(fake, home, backup_id, first)

    assert not {"000002-00000.pack", "000002-00001.pack", "000002-00004.pack"} & seen_before_upload
    on_disk = {f"packs/{p.name}" for p in (slot / "packs").iterdir()}
    assert on_disk == {f"packs/{p.name}" for p in second.packs}
    with fake.connection() as conn:
        native.delete_backup(conn, second.path)
    assert not slot.exists() or not any((slot / "packs").iterdir())


def test_failure_at_the_commit_keeps_the_previous_generation(fake: Counting, tmp_path: Path) -> None:
    """
    GIVEN a committed slot and a destination whose rename (the commit) fails
    WHEN a push reaches the commit
    THEN the error propagates, generation 1 stays valid, and a retry commits generation 2
    """
    home = tmp_path / "home"
    make_site(home, files=12)
    backup_id = native.new_backup_id()
    first = push(fake, home, backup_id, None)
    (home / "notes.txt").write_bytes(b"changed")
    fake.inner.faults.fail("rename", "*manifest-000002*", times=1)

    with pytest.raises(TransientError):
        push(fake, home, backup_id, first)
    with fake.connection() as conn:
        assert native.read_manifest(conn, first.path).generation == 1

    second = push(fake, home, backup_id, first)
    assert second.generation == 2
    assert stored_objects(fake, second.path) == second.referenced_objects()


def test_abort_commits_nothing(fake: Counting, tmp_path: Path) -> None:
    """
    GIVEN an admin who asks to abort while files are being packed
    WHEN a new backup and an update of an existing slot run
    THEN both raise BackupAborted; the new backup leaves no folder, the slot keeps generation 1
    """
    home = tmp_path / "home"
    make_site(home)
    backup_id = native.new_backup_id()
    first = push(fake, home, backup_id, None)
    aborted_id = native.new_backup_id()

    with pytest.raises(native.BackupAborted):
        push(fake, home, aborted_id, None, progress=Recorder(abort_after=2))
    assert not (fake.inner.root / ACCOUNT / aborted_id).exists()

    for path in (home / "dir0").iterdir():
        touch_later(path)
    with pytest.raises(native.BackupAborted):
        push(fake, home, backup_id, first, progress=Recorder(abort_after=3))
    with fake.connection() as conn:
        assert native.read_manifest(conn, first.path).generation == 1
    assert stored_objects(fake, first.path) == first.referenced_objects()


def test_stale_previous_manifest_and_committed_slot_are_refused(fake: Counting, tmp_path: Path) -> None:
    """
    GIVEN a slot already pushed to generation 2
    WHEN a push passes generation 1 as the previous manifest, or a new backup reuses the id
    THEN both are refused with SlotConflict and generation 2 is untouched
    """
    home = tmp_path / "home"
    make_site(home, files=6)
    backup_id = native.new_backup_id()
    first = push(fake, home, backup_id, None)
    (home / "notes.txt").write_bytes(b"changed")
    second = push(fake, home, backup_id, first)

    with pytest.raises(native.SlotConflict):
        push(fake, home, backup_id, first)
    with pytest.raises(native.SlotConflict):
        push(fake, home, backup_id, None)
    with fake.connection() as conn:
        assert native.read_manifest(conn, second.path).generation == 2
    assert stored_objects(fake, second.path) == second.referenced_objects()


def test_unreadable_changed_file_keeps_its_stored_version(fake: Counting, tmp_path: Path) -> None:
    """
    GIVEN a committed slot and a file that changed but can no longer be read (EACCES), while
          another file vanished between the scan and the read
    WHEN the slot is pushed
    THEN the unreadable file keeps its previously stored version, the vanished one is dropped
         and reported, and the run still commits
    """
    home = tmp_path / "home"
    make_site(home, files=6)
    backup_id = native.new_backup_id()
    first = push(fake, home, backup_id, None)
    locked = home / "dir1" / "file001.bin"
    touch_later(locked)
    progress = Recorder()

    import destinations.formats.native.scan as native_scan

    real_open = native_scan.SourceReader.open

    def flaky_open(self: native_scan.SourceReader, rel: bytes) -> tuple[int, os.stat_result]:
        if rel == b"dir1/file001.bin":
            raise PermissionError(13, "Permission denied")
        if rel == b"notes.txt":
            raise FileNotFoundError(2, "No such file or directory")
        return real_open(self, rel)

    (home / "notes.txt").write_bytes(b"changed")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(native_scan.SourceReader, "open", flaky_open)
        second = push(fake, home, backup_id, first, progress=progress)

    entries = second.entry_map()
    assert entries[b"dir1/file001.bin"] == first.entry_map()[b"dir1/file001.bin"]
    assert b"notes.txt" not in entries
    assert "kept the version already stored" in progress.text()
    assert "skipped notes.txt: vanished or replaced since the scan" in progress.text()


def test_a_header_only_previous_from_list_backups_still_reuses_stored_files(
    fake: Counting, tmp_path: Path
) -> None:
    """
    GIVEN a committed slot, and its manifest header as list_backups returns it (no entries)
    WHEN the slot is pushed with that header as `previous` after one file changed
    THEN the engine plans from the manifest on the destination: only the changed file is stored
    """
    home = tmp_path / "home"
    make_site(home, files=12)
    backup_id = native.new_backup_id()
    push(fake, home, backup_id, None)
    with fake.connection() as conn:
        [listed] = native.list_backups(conn, ACCOUNT)
    assert listed.manifest is not None
    assert listed.manifest.entries == []
    (home / "notes.txt").write_bytes(b"changed")

    second = push(fake, home, backup_id, listed.manifest)

    assert second.totals["new_bytes"] == len(b"changed")
    assert second.totals["reused_files"] == 12


def test_a_grown_file_keeps_its_stored_chunks_only_when_its_old_bytes_are_unchanged(
    fake: Counting, tmp_path: Path
) -> None:
    """
    GIVEN a committed slot with two files of five chunks and a bit
    WHEN one grows by appending two chunks (a log, a mailbox), the other grows by two chunks
         but also had a byte of its start changed, and the slot is pushed
    THEN the appended file keeps its five whole stored chunks and stores only its tail; the
         edited one is stored whole again; a restore equals the changed tree
    """
    rng = random.Random(5)
    home = tmp_path / "home"
    home.mkdir()
    appended, edited = home / "mail.log", home / "edited.log"
    appended.write_bytes(rng.randbytes(5 * CHUNK + 100))
    edited.write_bytes(rng.randbytes(5 * CHUNK + 100))
    backup_id = native.new_backup_id()
    first = push(fake, home, backup_id, None)

    with appended.open("ab") as out:
        out.write(rng.randbytes(2 * CHUNK))
    data = bytearray(edited.read_bytes())
    data[10] ^= 0xFF
    edited.write_bytes(bytes(data) + rng.randbytes(2 * CHUNK))
    touch_later(appended)
    touch_later(edited)
    progress = Recorder()
    second = push(fake, home, backup_id, first, progress=progress)

    old, new = first.entry_map(), second.entry_map()
    assert new[b"mail.log"].chunks[:5] == old[b"mail.log"].chunks[:5]
    assert not set(new[b"edited.log"].chunks) & set(old[b"edited.log"].chunks)
    assert second.totals["new_bytes"] == (100 + 2 * CHUNK) + (7 * CHUNK + 100)
    assert f"{5 * CHUNK} bytes of grown files kept as stored" in progress.text()
    assert restore(fake, second, tmp_path / "out") == tree_state(home)
    # The committed manifest is the same bytes as encoding it anew.
    committed = (fake.inner.root / second.path / second.name).read_bytes()
    assert committed == native_manifest.encode_manifest(dataclasses.replace(second))
