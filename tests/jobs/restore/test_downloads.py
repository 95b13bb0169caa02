"""Downloads: .tar.gz files prepared from native and cPanel backups on a real pure-ftpd; expiry."""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from jobs.dbserver.client import DumpSource, MysqlServer
from jobs.models import Account, QueueItem
from jobs.restore import downloads
from tests.support.cpanel_archives import make_account_archive
from tests.support.fakes import tree_state
from tests.support.fixtures_restore import cpanel_folder, index_cpanel, make_native_backup, run_download

pytest_plugins = ["tests.support.fixtures_restore"]
pytestmark = [pytest.mark.peer, pytest.mark.django_db]


def members(path: Path) -> dict[bytes, tuple[tarfile.TarInfo, bytes | None]]:
    """Every member of a downloaded .tar.gz by its raw name, with its data."""
    found: dict[bytes, tuple[tarfile.TarInfo, bytes | None]] = {}
    with tarfile.open(path, "r:gz", encoding="utf-8", errors="surrogateescape") as tar:
        for info in tar:
            data = tar.extractfile(info).read() if info.isfile() else None  # type: ignore[union-attr]
            found[os.fsencode(info.name.rstrip("/"))] = (info, data)
    return found


def home_as_tar_members(home: Path) -> dict[bytes, tuple[object, ...]]:
    """The home folder as (type, mode, content sha256 or link target) per homedir/... name."""
    expected: dict[bytes, tuple[object, ...]] = {}
    for rel, state in tree_state(home).items():
        if state[0] == "f":
            expected[b"homedir/" + rel] = ("f", state[1], state[4])
        elif state[0] == "d":
            expected[b"homedir/" + rel] = ("d", state[1])
        else:
            expected[b"homedir/" + rel] = ("l", state[1])
    return expected


def as_states(found: dict[bytes, tuple[tarfile.TarInfo, bytes | None]]) -> dict[bytes, tuple[object, ...]]:
    states: dict[bytes, tuple[object, ...]] = {}
    for name, (info, data) in found.items():
        if info.isdir():
            states[name] = ("d", info.mode)
        elif info.issym():
            states[name] = ("l", os.fsencode(info.linkname))
        else:
            assert data is not None
            states[name] = ("f", info.mode, hashlib.sha256(data).hexdigest())
    return states


# --- native -------------------------------------------------------------------------------------


def test_whole_native_backup_downloads_as_a_tar_gz_of_the_home_and_its_databases(
    restore_native_destination, restore_account: Account, restore_mysql: MysqlServer
) -> None:
    """
    GIVEN a native backup of a home (odd names, links, a setuid file) and a database
    WHEN the whole backup is downloaded
    THEN the .tar.gz holds homedir/... identical to the home (modes without setuid) and
         databases/<db>.sql with the dump the backup recorded; the link is for its owner
    """
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.create_user("client", password="x")
    restore_account.owner = owner  # a client downloads only an account of theirs
    restore_account.save(update_fields=["owner"])
    database = f"{restore_account.username}_wp"
    restore_mysql.query(f"CREATE DATABASE `{database}`")
    restore_mysql.query("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)", database=database)
    restore_mysql.query("INSERT INTO t VALUES (1, 'one'), (2, 'two')", database=database)
    backup = make_native_backup(
        restore_native_destination,
        restore_account,
        databases=[DumpSource(name=database, server=restore_mysql)],
    )
    expected = home_as_tar_members(Path(restore_account.home))

    item = run_download(backup.snapshot, {"whole_account": True}, owner)

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    assert item.requested_by == owner
    path = downloads.download_file(item)
    assert path is not None
    assert path.name.endswith(".tar.gz")
    assert path.parent.parent == Path(settings.DOWNLOADS_DIR)
    assert item.result["url"] == f"/downloads/{item.pk}/{path.parent.name}/" or item.result["url"].endswith(
        f"/{item.pk}/{path.parent.name}/"
    )
    found = members(path)
    sql = found.pop(f"databases/{database}.sql".encode())[1]
    assert sql is not None
    assert hashlib.sha256(sql).hexdigest() == backup.manifest.databases[0].sha256
    assert b"INSERT INTO `t` VALUES" in sql
    assert b"(1,'one')" in sql
    assert as_states(found) == expected
    assert b"homedir/odd/latin1-\xe9t\xe9.txt" in found
    assert not found[b"homedir/script.sh"][0].mode & stat.S_ISUID
    assert item.result["restored"] == len(expected) + 1


def test_single_file_download_reads_only_that_files_bytes(
    restore_native_destination, restore_account: Account, counted_sessions
) -> None:
    backup = make_native_backup(restore_native_destination, restore_account)
    path = "public_html/wp-content/uploads/2024/image-3.jpg"
    entry = next(e for e in backup.manifest.entries if e.path == path.encode())

    item = run_download(backup.snapshot, {"paths": [path]})

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    session = counted_sessions[-1]
    assert session.counting.downloaded == sum(chunk.stored for chunk in entry.chunks)
    found = members(downloads.download_file(item))  # type: ignore[arg-type]
    assert list(found) == [b"homedir/" + path.encode()]
    assert found[b"homedir/" + path.encode()][1] == (Path(restore_account.home) / path).read_bytes()


def test_a_download_with_damaged_data_fails_and_leaves_no_file(
    restore_native_destination, restore_account: Account, pure_ftpd
) -> None:
    backup = make_native_backup(restore_native_destination, restore_account)
    entry = next(e for e in backup.manifest.entries if e.path == b"big.bin")
    chunk = entry.chunks[0]
    pack = pure_ftpd.root / restore_native_destination.directory / backup.snapshot.path / "packs" / chunk.pack
    data = bytearray(pack.read_bytes())
    data[chunk.offset + 10] ^= 0xFF
    pack.write_bytes(bytes(data))

    item = run_download(backup.snapshot, {"paths": ["big.bin"]})

    assert item.status == QueueItem.Status.FAILED
    assert "damaged" in item.error
    assert downloads.download_file(item) is None
    assert list(Path(settings.DOWNLOADS_DIR).iterdir()) == []


# --- cPanel -------------------------------------------------------------------------------------


def _archive_members(path: Path, top: str) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
    found: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}
    with tarfile.open(path, encoding="utf-8", errors="surrogateescape") as tar:
        for info in tar:
            data = tar.extractfile(info).read() if info.isfile() else None  # type: ignore[union-attr]
            found[info.name[len(top) :].rstrip("/")] = (info, data)
    return found


@pytest.fixture
def cpanel_archive(restore_cpanel_destination, pure_ftpd, mysql_cleanup: list[str]):
    import secrets

    user = f"cp{secrets.token_hex(3)}"
    made = make_account_archive(
        cpanel_folder(pure_ftpd, restore_cpanel_destination), user, seed=4, size_scale=0.15
    )
    (snapshot,) = index_cpanel(restore_cpanel_destination)
    return snapshot, made


def test_cpanel_parts_download_holds_exactly_the_chosen_members(cpanel_archive) -> None:
    """
    GIVEN a cPanel archive
    WHEN a DNS zone, the cron jobs, a database, one mailbox and one file are downloaded
    THEN the tar.gz holds those members byte for byte (the dump as databases/<db>.sql, config
         files under their archive names) and, of the shared mail files, only that box's lines
    """
    snapshot, made = cpanel_archive
    user = made.user
    main = f"{user}site.com"
    request = {
        "parts": [
            {"kind": "dns_zones", "name": main},
            {"kind": "cron", "name": ""},
            {"kind": "databases", "name": f"{user}_wp"},
            {"kind": "email_accounts", "name": f"info@{main}"},
        ],
        "paths": ["public_html/index.php"],
    }

    item = run_download(snapshot, request)

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    got = members(downloads.download_file(item))  # type: ignore[arg-type]
    archive = _archive_members(made.path, made.top)
    box = f"homedir/mail/{main}/info"
    wanted = {name for name in archive if name == box or name.startswith(box + "/")}
    wanted |= {"homedir/public_html/index.php", f"dnszones/{main}.db", f"cron/{user}"}
    expected = {os.fsencode(name): archive[name][1] for name in wanted}
    expected[f"databases/{user}_wp.sql".encode()] = archive[f"mysql/{user}_wp.sql"][1]
    for name in ("passwd", "shadow", "quota"):
        lines = archive[f"homedir/etc/{main}/{name}"][1].splitlines(keepends=True)  # type: ignore[union-attr]
        expected[f"homedir/etc/{main}/{name}".encode()] = b"".join(
            ln for ln in lines if ln.startswith(b"info:")
        )
    assert {name: data for name, (_info, data) in got.items()} == expected


def test_whole_cpanel_backup_download_keeps_every_member(cpanel_archive) -> None:
    snapshot, made = cpanel_archive

    item = run_download(snapshot, {"whole_account": True})

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    got = members(downloads.download_file(item))  # type: ignore[arg-type]
    archive = _archive_members(made.path, made.top)
    archive.pop("", None)  # the top folder itself
    expected: dict[bytes, bytes | None] = {}
    for name, (info, data) in archive.items():
        if name.startswith("mysql/") and name.endswith(".sql"):
            name = "databases/" + name[len("mysql/") :]
        if info.islnk():
            data = archive[info.linkname[len(made.top) :]][1]
        expected[os.fsencode(name)] = data
    resolved: dict[bytes, bytes | None] = {}
    for raw, (info, data) in got.items():
        if info.islnk():
            data = got[os.fsencode(info.linkname)][1]
        resolved[raw] = data
    assert resolved == expected


# --- expiry -------------------------------------------------------------------------------------


def test_downloads_expire_after_the_ttl(restore_native_destination, restore_account: Account) -> None:
    """
    GIVEN a finished download, a leftover folder of a failed run and a fresh one
    WHEN expire_downloads runs before the TTL THEN nothing is deleted;
    WHEN it runs after the TTL (moved clock) THEN the download's folder and the old leftover
         are deleted, the item says expired, and download_file answers None
    """
    backup = make_native_backup(restore_native_destination, restore_account)
    item = run_download(backup.snapshot, {"paths": ["public_html/index.php"]})
    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    path = downloads.download_file(item)
    assert path is not None
    base = Path(settings.DOWNLOADS_DIR)
    leftover = base / ("a" * 32)
    leftover.mkdir()
    (leftover / ".half.tar.gz.part").write_bytes(b"x")
    old = (timezone.now() - timedelta(hours=settings.DOWNLOAD_TTL_HOURS, minutes=5)).timestamp()
    os.utime(leftover, (old, old))
    fresh = base / ("b" * 32)
    fresh.mkdir()
    ttl = timedelta(hours=settings.DOWNLOAD_TTL_HOURS)

    assert (
        downloads.expire_downloads(now=timezone.now() + ttl - timedelta(minutes=1)) == 1
    )  # the old leftover
    assert path.exists()
    assert not leftover.exists()
    assert downloads.download_file(item, now=timezone.now() + ttl + timedelta(minutes=1)) is None

    later = timezone.now() + ttl + timedelta(minutes=1)
    assert downloads.expire_downloads(now=later) == 2  # the download and the fresh leftover, now old too
    assert not path.exists()
    assert not path.parent.exists()
    item.refresh_from_db()
    assert item.result["expired"] is True
    assert downloads.download_file(item) is None
    assert downloads.expire_downloads(now=later) == 0
