"""Restoring cPanel account archives from a real pure-ftpd into a home folder and MariaDB.

Expectations are read from the generated archive with Python's tarfile (the generator's own
output, trusted here), never from the code under test.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest

from jobs.dbserver.client import MysqlServer
from jobs.models import Account, QueueItem, Snapshot
from jobs.restore.plan import CONFIG_REASON
from jobs.restore.request import validate_request
from tests.support.cpanel_archives import (
    HOSTILE_KINDS,
    GeneratedArchive,
    make_account_archive,
    make_hostile_archive,
)
from tests.support.cpanel_archives.hostile import _member
from tests.support.fakes import tree_state
from tests.support.fixtures_restore import (
    HOME_OWNER,
    chown_tree,
    cpanel_folder,
    index_cpanel,
    leftover_restore_users,
    restored_folder,
    run_restore,
    unchanged,
)

pytest_plugins = ["tests.support.fixtures_restore"]
pytestmark = [pytest.mark.peer, pytest.mark.django_db]


# --- expectations from the archive ------------------------------------------------------------


def _tar_members(made: GeneratedArchive) -> list[tuple[str, tarfile.TarInfo, bytes | None]]:
    """(home-relative name, info, data) of the archive's home folder, homedir.tar included."""
    found: list[tuple[str, tarfile.TarInfo, bytes | None]] = []
    prefix = made.top + "homedir/"
    with tarfile.open(made.path, encoding="utf-8", errors="surrogateescape") as outer:
        for info in outer:
            if info.name == made.top + "homedir.tar":
                inner_data = outer.extractfile(info).read()  # type: ignore[union-attr]
                with tarfile.open(
                    fileobj=io.BytesIO(inner_data), encoding="utf-8", errors="surrogateescape"
                ) as inner:
                    for sub in inner:
                        name = sub.name.removeprefix("./").rstrip("/")
                        if name and name != ".":
                            data = inner.extractfile(sub).read() if sub.isfile() else None  # type: ignore[union-attr]
                            if sub.islnk():
                                sub.linkname = sub.linkname.removeprefix("./")
                            found.append((name, sub, data))
            elif info.name.startswith(prefix):
                data = outer.extractfile(info).read() if info.isfile() else None  # type: ignore[union-attr]
                if info.islnk():
                    info.linkname = info.linkname.removeprefix(prefix)
                found.append((info.name[len(prefix) :].rstrip("/"), info, data))
    return found


def archive_home(made: GeneratedArchive, under: str = "") -> dict[bytes, tuple[Any, ...]]:
    """What the home folder (or `under` inside it) must look like after a restore."""
    expected: dict[bytes, tuple[Any, ...]] = {}
    contents: dict[str, bytes] = {}
    for name, info, data in _tar_members(made):
        if data is not None:
            contents[name] = data
        if under and name != under and not name.startswith(under + "/"):
            continue
        key = os.fsencode(name)
        if info.isdir():
            expected[key] = ("d", info.mode & 0o1777, info.mtime)
        elif info.issym():
            expected[key] = ("l", os.fsencode(info.linkname))
        elif info.islnk():
            source = contents[info.linkname]
            expected[key] = ("f", hashlib.sha256(source).hexdigest(), info.mode & 0o1777, info.mtime)
        else:
            assert data is not None
            expected[key] = ("f", hashlib.sha256(data).hexdigest(), info.mode & 0o1777, info.mtime)
    return expected


def disk_home(root: Path, under: str = "") -> dict[bytes, tuple[Any, ...]]:
    found: dict[bytes, tuple[Any, ...]] = {}
    base = os.fsencode(root)
    for folder, dirs, files in os.walk(base):
        for name in dirs + files:
            full = os.path.join(folder, name)
            rel = os.path.relpath(full, base)
            if under and rel != os.fsencode(under) and not rel.startswith(os.fsencode(under) + b"/"):
                continue
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("l", os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("d", stat.S_IMODE(st.st_mode), int(st.st_mtime))
            else:
                with open(full, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
                found[rel] = ("f", digest, stat.S_IMODE(st.st_mode), int(st.st_mtime))
    return found


# --- fixtures -----------------------------------------------------------------------------------


class CpanelBackup:
    def __init__(self, snapshot: Snapshot, made: GeneratedArchive, account: Account) -> None:
        self.snapshot = snapshot
        self.made = made
        self.account = account

    @property
    def home(self) -> Path:
        return Path(self.account.home)


def _home_for(account: Account, tmp_path: Path) -> None:
    home = tmp_path / "homes" / account.username
    home.mkdir(parents=True)
    chown_tree(home, HOME_OWNER)
    account.home = str(home)
    account.save()


@pytest.fixture
def cpanel_user(mysql_cleanup: list[str]) -> str:
    import secrets

    user = f"cp{secrets.token_hex(3)}"
    mysql_cleanup.append(user)
    return user


def make_cpanel_backup(destination, pure_ftpd, tmp_path: Path, user: str, **options: Any) -> CpanelBackup:
    made = make_account_archive(
        cpanel_folder(pure_ftpd, destination), user, seed=5, size_scale=0.2, **options
    )
    (snapshot,) = index_cpanel(destination)
    assert snapshot.restorable, snapshot.problems
    assert snapshot.account is not None
    _home_for(snapshot.account, tmp_path)
    return CpanelBackup(snapshot, made, snapshot.account)


@pytest.fixture
def cpanel_backup(restore_cpanel_destination, pure_ftpd, tmp_path: Path, cpanel_user: str) -> CpanelBackup:
    return make_cpanel_backup(restore_cpanel_destination, pure_ftpd, tmp_path, cpanel_user)


# --- files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("homedir_tar", [False, True], ids=["homedir-folder", "homedir-tar"])
def test_full_account_restore_brings_back_home_databases_and_users_reading_the_archive_once(
    restore_cpanel_destination,
    pure_ftpd,
    tmp_path: Path,
    cpanel_user: str,
    restore_mysql: MysqlServer,
    counted_sessions,
    victim_folder: Path,
    homedir_tar: bool,
) -> None:
    """
    GIVEN a cPanel archive (home folder, three databases, four db users, config parts)
    WHEN the whole account is restored into a new folder
    THEN the home comes back byte-identical (hard link as a copy, symlinks as links), owned by
         the account, every database holds its rows, the <user>_ db users exist with their
         grants, config parts are skipped with the reason, and the archive was read once
    """
    backup = make_cpanel_backup(
        restore_cpanel_destination, pure_ftpd, tmp_path, cpanel_user, homedir_tar=homedir_tar
    )
    # The account already has the remote host '%' on this server (one of its users has it, as
    # cPanel's Remote MySQL gives it); a backup alone never brings a remote host back.
    restore_mysql.query(f"CREATE USER '{cpanel_user}_ro'@'%'")
    with unchanged(victim_folder):
        item = run_restore(backup.snapshot, {"whole_account": True, "confirm_overwrite": True})

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    folder = restored_folder(item)
    assert folder.parent == backup.home
    assert disk_home(folder) == archive_home(backup.made)
    for dirpath, dirs, files in os.walk(os.fsencode(folder)):
        for name in [*dirs, *files, b"."]:
            assert (
                os.lstat(os.path.join(dirpath, name)).st_uid,
                os.lstat(os.path.join(dirpath, name)).st_gid,
            ) == (HOME_OWNER)
    for db, tables in backup.made.db_rows.items():
        for table, count in tables.items():
            assert restore_mysql.query(f"SELECT COUNT(*) FROM `{table}`", database=db) == [[str(count)]]
    wp = f"{cpanel_user}_wp"
    odd = {
        bytes.fromhex(v).decode()
        for (v,) in restore_mysql.query("SELECT HEX(option_value) FROM wp_options", database=wp)
    }
    assert "Robert'); DROP TABLE Students;--" in odd
    assert "NUL\0inside" in odd
    users = sorted(
        u
        for (u,) in restore_mysql.query(
            f"SELECT DISTINCT User FROM mysql.user WHERE User LIKE '{cpanel_user}%'"
        )
    )
    assert users == [f"{cpanel_user}_ro", f"{cpanel_user}_shop", f"{cpanel_user}_wp"]  # not the main user
    grants = " ".join(g for (g,) in restore_mysql.query(f"SHOW GRANTS FOR '{cpanel_user}_ro'@'%'"))
    assert "GRANT SELECT ON" in grants
    assert f"{cpanel_user}\\\\_shop" in grants
    reasons = {s["path"]: s["reason"] for s in item.result["skipped"]}
    assert reasons["cron"] == CONFIG_REASON
    assert reasons[f"dns_zones: {cpanel_user}site.com"] == CONFIG_REASON
    assert reasons["account_settings"] == CONFIG_REASON
    assert "only database users named" in reasons[f"db_users: {cpanel_user}@localhost"]
    session = counted_sessions[-1]  # the first one indexed the destination
    assert session.counting.calls["download"] == 1
    assert session.counting.downloaded == backup.made.path.stat().st_size
    assert leftover_restore_users(restore_mysql) == []


def test_chosen_files_and_folders_are_restored_over_the_current_ones_in_one_pass(
    cpanel_backup: CpanelBackup, counted_sessions, victim_folder: Path
) -> None:
    home = cpanel_backup.home
    (home / "public_html").mkdir()
    (home / "public_html" / "index.php").write_text("newer, to be replaced\n")
    (home / "public_html" / "keep.txt").write_text("not in the backup\n")
    (home / "unrelated.txt").write_text("untouched\n")
    paths = ["public_html/index.php", "public_html/index-copy.php", "public_html/css", "odd"]

    with unchanged(victim_folder):
        item = run_restore(
            cpanel_backup.snapshot, {"paths": paths, "target": "overwrite", "confirm_overwrite": True}
        )

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    got = disk_home(home)
    for path in paths:
        assert {
            k: v for k, v in got.items() if k == os.fsencode(path) or k.startswith(os.fsencode(path) + b"/")
        } == (archive_home(cpanel_backup.made, path))
    assert (home / "public_html" / "keep.txt").read_text() == "not in the backup\n"
    assert (home / "unrelated.txt").read_text() == "untouched\n"
    assert not (home / "public_html" / "js").exists()
    assert not (home / "mail").exists()
    session = counted_sessions[-1]  # the first one indexed the destination
    assert session.counting.calls["download"] == 1


def test_a_hard_link_whose_target_is_not_restored_is_skipped_with_a_reason(
    cpanel_backup: CpanelBackup,
) -> None:
    item = run_restore(cpanel_backup.snapshot, {"paths": ["public_html/index-copy.php"]})

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    assert not (restored_folder(item) / "public_html" / "index-copy.php").exists()
    (skip,) = item.result["skipped"]
    assert skip["path"] == "public_html/index-copy.php"
    assert "not part of this restore" in skip["reason"]


def test_mailbox_restore_merges_only_that_boxes_lines_into_the_shared_files(
    cpanel_backup: CpanelBackup,
) -> None:
    """
    GIVEN the home's etc/<domain>/passwd lists a changed line for info and a new box 'other'
    WHEN info@<domain> is restored over the current files
    THEN info's Maildir comes back identical; passwd, shadow and quota hold the backup's info
         line in place and 'other' untouched; sales is neither in the files nor on disk
    """
    user = cpanel_backup.account.username
    domain = f"{user}site.com"
    home = cpanel_backup.home
    etc = home / "etc" / domain
    etc.mkdir(parents=True)
    (etc / "passwd").write_text(
        f"info:x:1:1::/old:/old\nother:x:1001:1001::/home/{user}/mail/{domain}/other:/home/{user}\n"
    )

    item = run_restore(
        cpanel_backup.snapshot,
        {
            "parts": [{"kind": "email_accounts", "name": f"info@{domain}"}],
            "target": "overwrite",
            "confirm_overwrite": True,
        },
    )

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    box = f"mail/{domain}/info"
    assert disk_home(home, box) == archive_home(cpanel_backup.made, box)
    passwd = (etc / "passwd").read_text().splitlines()
    assert passwd == [
        f"info:x:1001:1001::/home/{user}/mail/{domain}/info:/home/{user}",
        f"other:x:1001:1001::/home/{user}/mail/{domain}/other:/home/{user}",
    ]
    shadow = (etc / "shadow").read_text().splitlines()
    assert [line.split(":")[0] for line in shadow] == ["info"]
    assert (etc / "quota").read_text() == f"info:{1 << 30}\n"
    assert not (home / "mail" / domain / "sales").exists()
    assert not (home / "public_html").exists()


def test_database_part_replaces_the_live_database(
    cpanel_backup: CpanelBackup, restore_mysql: MysqlServer
) -> None:
    user = cpanel_backup.account.username
    shop = f"{user}_shop"
    restore_mysql.query(f"CREATE DATABASE `{shop}`")
    restore_mysql.query("CREATE TABLE products (id INT PRIMARY KEY, note TEXT)", database=shop)
    restore_mysql.query("INSERT INTO products VALUES (1, 'live row')", database=shop)
    restore_mysql.query("CREATE TABLE live_only (id INT)", database=shop)

    item = run_restore(
        cpanel_backup.snapshot, {"parts": [{"kind": "databases", "name": shop}], "confirm_overwrite": True}
    )

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    for table, count in cpanel_backup.made.db_rows[shop].items():
        assert restore_mysql.query(f"SELECT COUNT(*) FROM `{table}`", database=shop) == [[str(count)]]
    tables = sorted(t for (t,) in restore_mysql.query("SHOW TABLES", database=shop))
    assert tables == sorted(cpanel_backup.made.db_rows[shop])
    assert restore_mysql.list_databases(f"{user}\\_wp") == []  # only the chosen database
    assert not any(Path(cpanel_backup.home).iterdir())  # no files for a database part


# --- the account and the archive ----------------------------------------------------------------


def test_an_archive_replaced_after_indexing_is_refused_before_anything_is_written(
    cpanel_backup: CpanelBackup, pure_ftpd, tmp_path: Path
) -> None:
    """GIVEN another account's archive put where the indexed one was WHEN restored THEN refused."""
    path = cpanel_backup.made.path
    make_account_archive(
        tmp_path, cpanel_backup.account.username, cp_user="intruder", seed=9, size_scale=0.25
    )
    shutil.copyfile(tmp_path / path.name, path)

    item = run_restore(cpanel_backup.snapshot, {"whole_account": True, "confirm_overwrite": True})

    assert item.status == QueueItem.Status.FAILED
    assert "changed since it was indexed" in item.error
    assert list(cpanel_backup.home.iterdir()) == []


def test_an_archive_of_another_account_is_never_written_into_this_one(
    cpanel_backup: CpanelBackup, tmp_path: Path
) -> None:
    """GIVEN an index row that (wrongly) gives the archive to another account WHEN restored into
    a new folder THEN the cp/<user> member stops it and the new folder is removed again."""
    other = Account.objects.create(username=f"{cpanel_backup.account.username}x")
    _home_for(other, tmp_path)
    Snapshot.objects.filter(pk=cpanel_backup.snapshot.pk).update(account=other, account_name=other.username)
    snapshot = Snapshot.objects.get(pk=cpanel_backup.snapshot.pk)

    item = run_restore(snapshot, {"paths": ["public_html"]})

    assert item.status == QueueItem.Status.FAILED
    assert "holds account" in item.error
    assert list(Path(other.home).iterdir()) == []


# --- hostile archives -------------------------------------------------------------------------

WRITING_KINDS = [
    k for k in HOSTILE_KINDS if k not in ("not_tar", "not_tar_gzip", "wrong_account", "too_many_members")
]


def _escape_archive(path: Path) -> None:
    """bob's archive with relative links out of the home and writes through them."""
    import gzip

    members = [
        _member("bob/", typeflag=b"5", mode=0o755),
        _member("bob/cp/bob", b"USER=bob\nDNS=bobsite.com\n"),
        _member("bob/homedir/", typeflag=b"5", mode=0o711),
        _member("bob/homedir/public_html/", typeflag=b"5", mode=0o755),
        _member("bob/homedir/public_html/index.html", b"<html>hi</html>\n"),
        _member("bob/homedir/esc", typeflag=b"2", linkname=b"../../victim_folder", mode=0o777),
        _member("bob/homedir/esc/pwned.txt", b"through a link\n"),
        _member("bob/homedir/esc", b"replaces the link\n"),
        _member("bob/homedir/public_html/up", typeflag=b"2", linkname=b"../../../victim_folder/keep.txt"),
        _member("bob/homedir/public_html/up", b"overwrite through a link\n"),
        _member("bob/homedir/hard", typeflag=b"1", linkname=b"bob/homedir/esc"),
        _member("bob/homedir/setuid", b"#!/bin/sh\n", mode=0o6755),
    ]
    data = b"".join(members) + bytes(1024)
    path.write_bytes(gzip.compress(data + bytes(-len(data) % 10240), mtime=0))


def test_hostile_archives_write_nothing_outside_the_home_folder(
    restore_cpanel_destination, pure_ftpd, tmp_path: Path, victim_folder: Path
) -> None:
    """
    GIVEN archives with absolute names, '..', NUL, drive prefixes, hard links out, writes
          through symlinks (absolute and relative, to a sibling folder), devices, FIFOs, an
          absurd size, a cut archive and a second homedir.tar; and a live home whose
          public_html is a symlink to the sibling folder
    WHEN each is indexed: THEN none is offered for restore; and WHEN its flags are cleared by
         hand and it is restored over the home anyway
    THEN nothing outside the home folder changes (sibling folder, link targets, /etc), the
         harmless members are restored, and setuid bits are dropped
    """
    folder = cpanel_folder(pure_ftpd, restore_cpanel_destination)
    for index, kind in enumerate(WRITING_KINDS):
        day = cpanel_folder(pure_ftpd, restore_cpanel_destination, f"2025-06-{index + 1:02d}")
        make_hostile_archive(day / "bob.tar.gz", kind)
    _escape_archive(folder / "bob.tar.gz")
    snapshots = index_cpanel(restore_cpanel_destination)
    assert len(snapshots) == len(WRITING_KINDS) + 1
    account = Account.objects.get(username="bob")
    home = tmp_path / "homes" / "bob"
    outside = tmp_path / "outside-state-check"
    outside.mkdir()
    for snapshot in snapshots:
        assert not snapshot.restorable, snapshot.path
        with pytest.raises(Exception, match="cannot be restored"):
            validate_request(snapshot, {})

    for snapshot in snapshots:
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        os.symlink("../../victim_folder", home / "public_html")
        account.home = str(home)
        account.save()
        Snapshot.objects.filter(pk=snapshot.pk).update(state=Snapshot.State.COMPLETE, flags=[])
        snapshot.refresh_from_db()
        before = {k: v for k, v in tree_state(tmp_path).items() if not k.startswith(b"homes/bob")}

        item = run_restore(
            snapshot, {"target": "overwrite", "whole_account": True, "confirm_overwrite": True}
        )

        after = {k: v for k, v in tree_state(tmp_path).items() if not k.startswith(b"homes/bob")}
        assert after == before, snapshot.path
        assert (victim_folder / "keep.txt").read_text() == "must stay\n"
        assert not os.path.exists("/etc/cron.d/evil")
        assert item.status in (QueueItem.Status.PARTIAL, QueueItem.Status.FAILED), (
            snapshot.path,
            item.result,
        )
        if item.status == QueueItem.Status.PARTIAL:
            assert (home / "public_html" / "index.html").read_text() == "<html>hi</html>\n"
            assert not (home / "public_html").is_symlink()
            assert any(
                s["reason"].startswith("refused") or "damaged" in s["reason"] for s in item.result["skipped"]
            )
        for dirpath, dirs, files in os.walk(home):
            for name in dirs + files:
                mode = os.lstat(os.path.join(dirpath, name)).st_mode
                assert not mode & (stat.S_ISUID | stat.S_ISGID), os.path.join(dirpath, name)
    escape = next(s for s in snapshots if s.path == "2025-07-04/accounts/bob.tar.gz")
    assert escape is not None
    assert os.readlink(home / "esc") == "../../victim_folder"  # restored as a link, never followed
    assert (home / "setuid").read_text() == "#!/bin/sh\n"
