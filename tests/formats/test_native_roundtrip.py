"""The native format against a real pure-ftpd: round trips, transfer counts, dumps, listing.

Run with the FTP fixtures registered (tests/conftest.py, or `-p tests.support.fixtures_ftp`).
"""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from destinations.formats import native
from destinations.formats.native.format_text import FORMAT_TEXT
from destinations.ftp import FtpSession
from tests.support.fakes import (
    Counting,
    Recorder,
    SqlDump,
    make_everything_tree,
    tree_state,
    write_test_backup,
)
from tests.support.fixtures_restore import chown_tree
from tests.support.ftp_servers import PureFtpd
from tests.support.peers import missing_peer

pytestmark = pytest.mark.peer

MiB = 1024 * 1024
CHUNK = 256 * 1024  # small chunks and packs: multi-chunk, multi-pack behaviour on little data
PACK = 256 * 1024


@pytest.fixture
def session(pure_ftpd: PureFtpd, ftp_dir: str) -> Iterator[Counting]:
    ftp = FtpSession(pure_ftpd.settings(directory=ftp_dir), max_connections=2, create_root=True)
    yield Counting(ftp)
    ftp.close()


def backup(session: Counting, home: Path | None, **options: object) -> native.Manifest:
    defaults: dict[str, object] = {
        "account": "bob",
        "job_uuid": "0b4c-job",
        "job_name": "nightly",
        "chunk_size": CHUNK,
        "pack_size": PACK,
    }
    return write_test_backup(session, home, **(defaults | options))


def test_every_entry_type_round_trips_byte_identical(session: Counting, tmp_path: Path) -> None:
    """
    GIVEN a home folder with files of 0 B, small, over the chunk size, incompressible, symlinks
          (absolute, relative, dangling), empty folders, private modes, setuid, and odd names
          (spaces, newline, non-UTF-8 bytes, unicode, leading dash, 250 bytes long)
    WHEN it is backed up to pure-ftpd, the manifest read back and the backup materialised
    THEN every entry comes back identical (content, type, mode without setuid, mtime to the ns,
         link targets), the FIFO is skipped and reported, and nothing else appears
    """
    home = tmp_path / "home"
    make_everything_tree(home, chunk_size=CHUNK)
    progress = Recorder()

    written = backup(session, home, progress=progress)

    assert "a-fifo: FIFO skipped" in progress.text()
    with session.connection() as conn:
        manifest = native.read_manifest(conn, written.path)
    assert manifest.generation == 1
    assert len(manifest.entries) == len(written.entries)
    big = next(e for e in manifest.entries if e.path == b"random-big.bin")
    assert len(big.chunks) == 3
    assert {c.codec for c in big.chunks} == {"raw"}
    log = next(e for e in manifest.entries if e.path == b"text-big.log")
    assert {c.codec for c in log.chunks} == {"zstd"}
    assert len({c.pack for e in manifest.entries for c in e.chunks}) > 1

    out = tmp_path / "out"
    out.mkdir()
    result = native.materialise(session, written.path, manifest, out)

    expected = tree_state(home)
    assert tree_state(out) == expected
    assert result.skipped == []
    assert result.files == sum(1 for state in expected.values() if state[0] == "f")
    assert os.stat(out / "script.sh").st_mode & 0o7777 == 0o755


def test_two_thousand_files_use_tens_of_data_connections(session: Counting, tmp_path: Path) -> None:
    """
    GIVEN 2,000 files of 20 KB (40 MB, incompressible) in 100 folders
    WHEN they are backed up with the default pack size
    THEN the whole backup takes at most one data connection per 8 MiB stored plus 10
         (here: a handful of packs, the format file and the manifest), not one per file
    """
    home = tmp_path / "home"
    rng = random.Random(1)
    for folder in range(100):
        (home / f"d{folder:03d}").mkdir(parents=True)
        for number in range(20):
            (home / f"d{folder:03d}" / f"f{number}.jpg").write_bytes(rng.randbytes(20_000))

    manifest = backup(session, home, chunk_size=native.CHUNK_SIZE, pack_size=native.PACK_SIZE)

    stored = manifest.totals["stored"]
    assert manifest.totals["files"] == 2000
    assert session.data_connections <= stored // (8 * MiB) + 10
    assert session.calls["upload_file"] == len(manifest.packs) + 2  # + format file + manifest
    assert len(manifest.packs) == 3


def test_restoring_one_file_downloads_only_its_bytes(session: Counting, tmp_path: Path) -> None:
    """
    GIVEN a backup of several packs
    WHEN one small file, then one multi-chunk file, is materialised
    THEN each costs one ranged download of exactly its stored bytes; a full restore reads
         each pack once
    """
    home = tmp_path / "home"
    make_everything_tree(home, chunk_size=CHUNK)
    written = backup(session, home)
    with session.connection() as conn:
        manifest = native.read_manifest(conn, written.path)
    entries = manifest.entry_map()

    for name in (b"small.php", b"random-big.bin"):
        session.reset()
        out = tmp_path / f"one-{name.decode()}"
        out.mkdir()
        result = native.materialise(session, written.path, manifest, out, paths=[name.decode()])
        assert (result.files, result.skipped) == (1, [])
        assert session.downloaded == sum(chunk.stored for chunk in entries[name].chunks)
        assert session.calls["download"] == len({chunk.pack for chunk in entries[name].chunks})
        assert (out / name.decode()).read_bytes() == (home / name.decode()).read_bytes()

    session.reset()
    out = tmp_path / "all"
    out.mkdir()
    native.materialise(session, written.path, manifest, out)
    assert session.calls["download"] == len(manifest.packs)


def test_selected_folder_restores_its_subtree_only(session: Counting, tmp_path: Path) -> None:
    """
    GIVEN a backup
    WHEN the folder public_html and a path that is not in the backup are selected
    THEN the folder's subtree comes back (with its link), nothing else, and the unknown path is
         reported as skipped
    """
    home = tmp_path / "home"
    make_everything_tree(home, chunk_size=CHUNK)
    written = backup(session, home)
    out = tmp_path / "out"
    out.mkdir()

    result = native.materialise(session, written.path, written, out, paths=["public_html", "nope/x"])

    restored = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert restored == [
        "public_html",
        "public_html/index.html",
        "public_html/link-relative",
        "public_html/wp-content",
        "public_html/wp-content/cache",
    ]
    assert result.skipped == [("nope/x", "not in this backup")]


def test_database_dumps_stream_and_a_failed_dump_is_redone(session: Counting, tmp_path: Path) -> None:
    """
    GIVEN two databases, one whose dump breaks off half way on the first attempt
    WHEN a databases-only backup is written
    THEN the broken dump is redone from a fresh source, both dumps come back byte-identical
         through download_dump, and the manifest lists one `databases` part per database
    """
    sql = b"".join(b"INSERT INTO t VALUES (%d, 'row %d');\n" % (i, i) for i in range(50_000))
    flaky = SqlDump("bob_wp", sql, fail_times=1)
    steady = SqlDump("bob-shop%1", b"CREATE TABLE x (id int);\n")
    progress = Recorder()

    manifest = backup(session, None, databases=[flaky, steady], progress=progress)

    assert flaky.opens == 2
    assert "attempt 1 of 3 failed" in progress.text()
    assert [(p.kind, p.name, p.size) for p in manifest.parts] == [
        ("databases", "bob_wp", len(sql)),
        ("databases", "bob-shop%1", 25),
    ]
    assert manifest.databases[1].object == "db/bob-shop%251-000001.sql.zst"
    for dump in (flaky, steady):
        out = io.BytesIO()
        native.download_dump(session, manifest.path, manifest, dump.name, out)
        assert out.getvalue() == dump.data
    assert manifest.databases[0].stored < len(sql) / 5


def test_list_backups_finds_locked_and_unfinished_backups(session: Counting, tmp_path: Path) -> None:
    """
    GIVEN one committed backup that is then locked, and a folder holding packs but no manifest
    WHEN the destination is listed for a reindex
    THEN both appear: the first with its manifest header and locked, the second as unfinished
         with a problem; unlocking removes the marker
    """
    home = tmp_path / "home"
    (home / "a").mkdir(parents=True)
    (home / "a" / "f.txt").write_bytes(b"data")
    done = backup(session, home)
    with session.connection() as conn:
        native.set_locked(conn, done.path, True)
        conn.makedirs("bob/20250101T000000Z-00000000/packs")
        conn.upload_file("bob/20250101T000000Z-00000000/packs/000001-00000.pack", io.BytesIO(b"x"))

        found = native.list_backups(conn)

    assert [(b.backup_id, b.locked, b.unfinished) for b in found] == [
        ("20250101T000000Z-00000000", False, True),
        (done.backup_id, True, False),
    ]
    assert found[0].manifest is None
    assert "never completed" in (found[0].problem or "")
    header = found[1].manifest
    assert header is not None
    assert (header.totals["files"], header.job_name) == (1, "nightly")
    with session.connection() as conn:
        native.set_locked(conn, done.path, False)
        assert not native.list_backups(conn, "bob")[1].locked


def test_delete_backup_removes_everything(
    session: Counting, pure_ftpd: PureFtpd, ftp_dir: str, tmp_path: Path
) -> None:
    """
    GIVEN a committed backup with a database
    WHEN it is deleted
    THEN its folder is gone from the server and list_backups no longer shows it
    """
    home = tmp_path / "home"
    make_everything_tree(home, chunk_size=CHUNK)
    manifest = backup(session, home, databases=[SqlDump("db1", b"SELECT 1;\n")])
    with session.connection() as conn:
        native.delete_backup(conn, manifest.path)
        assert native.list_backups(conn) == []
    assert not (pure_ftpd.root / ftp_dir / manifest.path).exists()


def test_format_file_describes_a_restore_that_works_by_hand(
    session: Counting, pure_ftpd: PureFtpd, ftp_dir: str, tmp_path: Path
) -> None:
    """
    GIVEN a backup on pure-ftpd and the BACKUPSITE-FORMAT.txt the engine wrote beside it
    WHEN the "restore everything by hand" commands from that text are run with zstd, jq,
         tail, head and sh on a copy of the backup folder
    THEN every file with a UTF-8 name comes back identical and passes sha256sum -c, and
         (run as root) every entry gets back its owner and group: the account's (the home
         folder's) and root's, another user's and a group's
    """
    for tool in ("zstd", "jq", "sha256sum"):
        if shutil.which(tool) is None:
            missing_peer(f"{tool} is not installed")
    home = tmp_path / "home"
    make_everything_tree(home, chunk_size=CHUNK)
    (home / "a-fifo").unlink()
    owners = os.geteuid() == 0
    if owners:
        chown_tree(home, (4242, 4243))
        os.chown(home / "secret", 0, 0)
        os.chown(home / "secret" / "key", 0, 0)
        os.chown(home / "public_html", 4242, 99)
        os.lchown(home / "link-dangling", 1234, 1235)
    manifest = backup(session, home)
    destination = pure_ftpd.root / ftp_dir
    assert (destination / "BACKUPSITE-FORMAT.txt").read_text() == FORMAT_TEXT

    lines = FORMAT_TEXT.split("\n")
    start = lines.index("  cd backup") + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("  less restore.sh"))
    verify = lines.index("  sh -e restore.sh") + 1
    script = "\n".join([*lines[start:end], "sh -e restore.sh", *lines[verify : verify + 3]])
    script = script.replace("manifest-000003", f"manifest-{manifest.generation:06d}")
    work = tmp_path / "backup"
    shutil.copytree(destination / manifest.path, work)

    subprocess.run(["sh", "-ec", script], cwd=work, check=True, capture_output=True)

    restored = tmp_path / "restored"
    for entry in manifest.entries:
        if entry.type == "f" and b"\xff" not in entry.path:
            assert (restored / os.fsdecode(entry.path)).read_bytes() == (
                home / os.fsdecode(entry.path)
            ).read_bytes()
        if entry.type == "l" and b"\xff" not in entry.path and b"\xfe" not in (entry.link or b""):
            assert os.readlink(restored / os.fsdecode(entry.path)) == os.fsdecode(entry.link or b"")
        if owners and b"\xff" not in entry.path and (entry.type != "l" or b"\xfe" not in (entry.link or b"")):
            got, was = os.lstat(restored / os.fsdecode(entry.path)), os.lstat(home / os.fsdecode(entry.path))
            assert (got.st_uid, got.st_gid) == (was.st_uid, was.st_gid), entry.display
    if owners:
        assert os.stat(restored / "secret").st_uid == 0
        assert os.stat(restored / "public_html").st_gid == 99
        assert os.stat(restored / "small.php")[4:6] == (4242, 4243)


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_fifty_single_file_restores_in_a_row_each_finish_well_under_the_timeout(
    pure_ftpd: PureFtpd, ftp_dir: str, tmp_path: Path, tls: bool
) -> None:
    """
    GIVEN a backup whose 1,000 small files fill three packs of the default 16 MiB, over plain
         FTP or explicit TLS
    WHEN 50 single files are restored one after the other (from the start, middle and end of
         their packs)
    THEN each comes back byte-identical, reads only its stored bytes, and takes a small part
         of the destination's timeout (a read stopped early never waits for the server)
    """
    home = tmp_path / "home"
    rng = random.Random(50)
    for n in range(1000):
        folder = home / f"site{n % 6}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file{n:04}.bin").write_bytes(rng.randbytes(33 * 1024 + n))
    settings = pure_ftpd.settings(
        directory=ftp_dir, ssl=tls, tls_fingerprint=pure_ftpd.fingerprint if tls else ""
    )
    ftp = FtpSession(settings, max_connections=2, create_root=True)
    try:
        counted = Counting(ftp)
        manifest = backup(counted, home, pack_size=16 * 1024 * 1024)
        entries = manifest.entry_map()
        files = sorted(name for name, entry in entries.items() if entry.type == "f")
        assert len(manifest.packs) >= 2
        slowest = 0.0
        for i in range(50):
            name = files[(i * 97) % len(files)]
            counted.reset()
            out = tmp_path / f"one-{i}"
            out.mkdir()
            started = time.monotonic()
            result = native.materialise(counted, manifest.path, manifest, out, paths=[name.decode()])
            slowest = max(slowest, time.monotonic() - started)
            assert (result.files, result.skipped) == (1, [])
            assert (out / name.decode()).read_bytes() == (home / name.decode()).read_bytes()
            assert counted.downloaded == sum(chunk.stored for chunk in entries[name].chunks)
        # a restore that waits for the server to notice the cut takes the whole timeout
        assert slowest < settings.timeout / 2, f"the slowest of 50 restores took {slowest:.1f} s"
    finally:
        ftp.close()
