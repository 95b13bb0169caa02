"""Restoring Backupsite's own backups from a real pure-ftpd into a home folder and MariaDB."""

from __future__ import annotations

import os
import shutil
import stat
from datetime import datetime
from pathlib import Path

import pytest

from jobs.dbserver.client import DumpSource, MysqlServer
from jobs.models import Account, QueueItem, Snapshot
from tests.support.fakes import SqlDump, tree_state
from tests.support.fixtures_restore import (
    HOME_OWNER,
    leftover_restore_users,
    make_native_backup,
    restored_folder,
    rows,
    run_restore,
    unchanged,
)

pytest_plugins = ["tests.support.fixtures_restore"]
pytestmark = [pytest.mark.peer, pytest.mark.django_db]


def home_state(home: Path) -> dict[bytes, tuple[object, ...]]:
    return {k: v for k, v in tree_state(home).items() if not k.startswith(b"restore-")}


@pytest.fixture
def backup(restore_native_destination, restore_account):
    return make_native_backup(restore_native_destination, restore_account)


def test_full_account_restore_into_a_new_folder_is_byte_identical_and_owned_by_the_account(
    backup, restore_account: Account, victim_folder: Path
) -> None:
    """
    GIVEN a native backup of a home with odd names, links, private and setuid files
    WHEN the whole account is restored with the default target
    THEN a new restore-… folder inside the home holds every entry identical (content, mode
         without setuid, mtime, link targets), owned by the home's owner, and nothing else changed
    """
    home = Path(restore_account.home)
    expected = home_state(home)
    with unchanged(victim_folder):
        item = run_restore(backup.snapshot, {"whole_account": True, "confirm_overwrite": True})

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    folder = restored_folder(item)
    assert folder.parent == home
    assert folder.name.startswith("restore-")
    assert tree_state(folder) == expected
    assert home_state(home) == expected  # the current files were not touched
    assert not stat.S_IMODE(os.stat(folder / "script.sh").st_mode) & (stat.S_ISUID | stat.S_ISGID)
    for dirpath, dirs, files in os.walk(os.fsencode(folder)):
        for name in [*dirs, *files, b"."]:
            st = os.lstat(os.path.join(dirpath, name))
            assert (st.st_uid, st.st_gid) == HOME_OWNER, os.path.join(dirpath, name)
    assert item.result["restored"] == len(expected)
    assert item.result["skipped"] == []
    assert item.result["target"] == str(folder)


def test_single_file_restore_downloads_only_that_files_bytes(
    backup, restore_account: Account, counted_sessions
) -> None:
    """GIVEN a backup of several packs WHEN one file is restored THEN only its stored chunks are read."""
    path = "public_html/wp-content/uploads/2024/photo.jpg"
    entry = next(e for e in backup.manifest.entries if e.path == path.encode())
    stored = sum(chunk.stored for chunk in entry.chunks)
    all_packs = sum(pack.size for pack in backup.manifest.packs)
    assert len(backup.manifest.packs) > 4

    item = run_restore(backup.snapshot, {"paths": [path]})

    assert item.status == QueueItem.Status.COMPLETED, item.error
    (session,) = counted_sessions
    assert session.counting.downloaded == stored
    assert session.counting.calls["download"] == len({chunk.pack for chunk in entry.chunks})
    assert session.counting.calls["listdir"] == 0
    assert stored < all_packs / 4
    restored = restored_folder(item) / path
    assert restored.read_bytes() == (Path(restore_account.home) / path).read_bytes()
    assert sorted(p.name for p in restored_folder(item).iterdir()) == ["public_html"]


def test_folder_restore_over_the_current_files_brings_back_the_folder_only(
    backup, restore_account: Account, victim_folder: Path
) -> None:
    home = Path(restore_account.home)
    expected = home_state(home)
    (home / "public_html" / "page-001.html").write_text("changed\n")
    (home / "public_html" / "index.php").unlink()
    (home / "big.bin").write_bytes(b"changed outside the restored folder")

    with unchanged(victim_folder):
        item = run_restore(
            backup.snapshot, {"paths": ["public_html"], "target": "overwrite", "confirm_overwrite": True}
        )

    assert item.status == QueueItem.Status.COMPLETED, item.error
    after = home_state(home)
    assert {k: v for k, v in after.items() if k.startswith(b"public_html")} == {
        k: v for k, v in expected.items() if k.startswith(b"public_html")
    }
    assert (home / "big.bin").read_bytes() == b"changed outside the restored folder"
    assert item.result["target"] == str(home)
    assert not any(p.name.startswith("restore-") for p in home.iterdir())


def test_new_folder_never_overwrites_an_existing_file_or_folder(
    backup, restore_account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    GIVEN the home holds changed files, and a folder with the name the restore would use
    WHEN the backup is restored into a new folder
    THEN the restore picks another folder name and every existing file stays as it was
    """
    from django.utils import timezone

    moment = timezone.make_aware(datetime(2025, 7, 4, 13, 22, 32))
    monkeypatch.setattr(timezone, "now", lambda: moment)
    home = Path(restore_account.home)
    (home / "public_html" / "index.php").write_text("the client's newer version\n")
    taken = home / f"restore-{timezone.localtime(moment):%Y-%m-%d-%H%M%S}"
    (taken / "public_html").mkdir(parents=True)
    (taken / "public_html" / "index.php").write_text("already here\n")
    before = tree_state(home)

    item = run_restore(backup.snapshot, {"paths": ["public_html/index.php"]})

    assert item.status == QueueItem.Status.COMPLETED, item.error
    folder = restored_folder(item)
    assert folder.name == taken.name + "-2"
    assert {k: v for k, v in tree_state(home).items() if not k.startswith(os.fsencode(folder.name))} == before
    assert (folder / "public_html" / "index.php").read_text().startswith("<?php require")


def test_mailbox_restore_writes_only_that_boxes_lines_of_the_shared_mail_files(
    restore_native_destination, restore_account: Account
) -> None:
    """
    GIVEN a backup with boxes info and sales, then info's mail deleted, its passwd line
          changed, a new box 'other' added and sales' line removed
    WHEN info@example.com is restored over the current files
    THEN info's Maildir is back, passwd/shadow/quota hold info's lines from the backup and
         every other current line unchanged (other kept, sales not brought back)
    """
    home = Path(restore_account.home)
    etc = home / "etc" / "example.com"
    backed_up_info = (etc / "passwd").read_text().splitlines()[0]
    expected_box = {k: v for k, v in tree_state(home).items() if k.startswith(b"mail/example.com/info")}
    backup = make_native_backup(restore_native_destination, restore_account)
    shutil.rmtree(home / "mail" / "example.com" / "info" / "cur")
    (etc / "passwd").write_text("info:x:1:1::/changed:/x\nother:x:4242:4243::/home/o:/home/o\n")
    (etc / "shadow").write_text("other:$6$other:19800::::::\n")
    (home / "mail" / "example.com" / "sales" / "cur" / "new-message").write_text("kept\n")

    item = run_restore(
        backup.snapshot,
        {
            "parts": [{"kind": "email_accounts", "name": "info@example.com"}],
            "target": "overwrite",
            "confirm_overwrite": True,
        },
    )

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    assert {
        k: v for k, v in tree_state(home).items() if k.startswith(b"mail/example.com/info")
    } == expected_box
    assert (etc / "passwd").read_text().splitlines() == [backed_up_info, "other:x:4242:4243::/home/o:/home/o"]
    assert (etc / "shadow").read_text().splitlines() == [
        "other:$6$other:19800::::::",
        "info:$6$infohash:19800::::::",
    ]
    assert (etc / "quota").read_text().splitlines() == ["info:1073741824", "sales:524288000"]
    assert (home / "mail" / "example.com" / "sales" / "cur" / "new-message").read_text() == "kept\n"


# --- databases ------------------------------------------------------------------------------------


@pytest.fixture
def live_database(restore_mysql: MysqlServer, restore_account: Account) -> str:
    name = f"{restore_account.username}_wp"
    restore_mysql.query(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    restore_mysql.query(
        "CREATE TABLE posts (id INT PRIMARY KEY, title VARCHAR(200), body MEDIUMTEXT) CHARACTER SET utf8mb4",
        database=name,
    )
    values = ",".join(f"({i}, 'títle {i} ''q''', REPEAT('body {i} ', 40))" for i in range(1, 201))
    restore_mysql.query(f"INSERT INTO posts VALUES {values}", database=name)
    return name


def _backup_with_database(destination, account: Account, server: MysqlServer, name: str):
    return make_native_backup(
        destination, account, databases=[DumpSource(name=name, server=server)], home=False
    )


def test_database_restore_replaces_the_live_database_with_the_backups_rows(
    restore_native_destination, restore_account: Account, restore_mysql: MysqlServer, live_database: str
) -> None:
    backed_up = rows(restore_mysql, live_database, "posts")
    backup = _backup_with_database(restore_native_destination, restore_account, restore_mysql, live_database)
    restore_mysql.query("DELETE FROM posts WHERE id > 100", database=live_database)
    restore_mysql.query("INSERT INTO posts VALUES (999, 'new', 'after the backup')", database=live_database)
    restore_mysql.query("CREATE TABLE added_later (id INT)", database=live_database)

    item = run_restore(
        backup.snapshot, {"parts": [{"kind": "databases", "name": live_database}], "confirm_overwrite": True}
    )

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    assert rows(restore_mysql, live_database, "posts") == backed_up
    assert restore_mysql.query("SHOW TABLES", database=live_database) == [["posts"]]
    assert item.result["databases"] == [
        {"source": live_database, "target": live_database, "status": "restored", "how": "renamed tables"}
    ]
    assert item.result["target"] == f"database {live_database}"
    assert leftover_restore_users(restore_mysql) == []
    assert restore_mysql.list_databases("bsr\\_%") == []


def test_database_restore_under_a_new_name_leaves_the_live_database_alone(
    restore_native_destination, restore_account: Account, restore_mysql: MysqlServer, live_database: str
) -> None:
    backed_up = rows(restore_mysql, live_database, "posts")
    backup = _backup_with_database(restore_native_destination, restore_account, restore_mysql, live_database)
    restore_mysql.query("DELETE FROM posts WHERE id > 10", database=live_database)
    copy = f"{restore_account.username}_copy"

    item = run_restore(
        backup.snapshot,
        {"parts": [{"kind": "databases", "name": live_database}], "database_name": copy},
    )

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    assert rows(restore_mysql, copy, "posts") == backed_up
    assert len(rows(restore_mysql, live_database, "posts")) == 10


def test_a_damaged_dump_fails_the_restore_and_keeps_the_live_database(
    restore_native_destination,
    restore_account: Account,
    restore_mysql: MysqlServer,
    live_database: str,
    pure_ftpd,
) -> None:
    """GIVEN a backup whose dump object was damaged on the destination WHEN restored THEN the
    restore fails and the live database still holds its current rows."""
    backup = _backup_with_database(restore_native_destination, restore_account, restore_mysql, live_database)
    restore_mysql.query("DELETE FROM posts WHERE id > 50", database=live_database)
    live = rows(restore_mysql, live_database, "posts")
    info = backup.manifest.databases[0]
    dump = pure_ftpd.root / restore_native_destination.directory / backup.snapshot.path / info.object
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))

    item = run_restore(
        backup.snapshot, {"parts": [{"kind": "databases", "name": live_database}], "confirm_overwrite": True}
    )

    assert item.status == QueueItem.Status.FAILED
    assert live_database in item.error
    assert rows(restore_mysql, live_database, "posts") == live
    assert restore_mysql.list_databases("bsr\\_%") == []
    assert leftover_restore_users(restore_mysql) == []


def test_a_hostile_dump_cannot_create_another_database_or_grant_anything(
    restore_native_destination,
    restore_account: Account,
    restore_mysql: MysqlServer,
    live_database: str,
    mysql_cleanup: list[str],
) -> None:
    """
    GIVEN a backup whose dump tries to create another database, grant itself everything,
          reach the live database and run a shell command
    WHEN it is restored over the live database
    THEN the restore fails, no other database or user exists, and the live rows are intact
    """
    other = f"other_{restore_account.username}"
    mysql_cleanup.extend([f"={other}", "evil"])
    live = rows(restore_mysql, live_database, "posts")
    hostile = (
        b"CREATE TABLE t (id INT);\n"
        + f"DROP TABLE IF EXISTS `{live_database}`.`posts`;\n".encode()
        + f"CREATE DATABASE {other};\n".encode()
        + b"GRANT ALL PRIVILEGES ON *.* TO 'evil'@'%' IDENTIFIED BY 'x' WITH GRANT OPTION;\n"
        + b"\\! touch /tmp/backupsite-hostile-dump-ran\n"
    )
    backup = make_native_backup(
        restore_native_destination, restore_account, databases=[SqlDump(live_database, hostile)], home=False
    )

    item = run_restore(
        backup.snapshot, {"parts": [{"kind": "databases", "name": live_database}], "confirm_overwrite": True}
    )

    assert item.status == QueueItem.Status.FAILED, item.result
    assert restore_mysql.list_databases(other) == []
    assert restore_mysql.query("SELECT User FROM mysql.user WHERE User = 'evil'") == []
    assert rows(restore_mysql, live_database, "posts") == live
    assert not os.path.exists("/tmp/backupsite-hostile-dump-ran")
    assert leftover_restore_users(restore_mysql) == []
    assert restore_mysql.list_databases("bsr\\_%") == []


def test_each_hostile_statement_alone_is_refused(
    restore_native_destination,
    restore_account: Account,
    restore_mysql: MysqlServer,
    mysql_cleanup: list[str],
) -> None:
    """Statement by statement (so one refusal does not hide the next): each fails the restore."""
    other = f"other_{restore_account.username}"
    mysql_cleanup.extend([f"={other}", "evil"])
    target = f"{restore_account.username}_new"
    statements = [
        f"CREATE DATABASE {other};",
        "GRANT ALL PRIVILEGES ON *.* TO 'evil'@'%' IDENTIFIED BY 'x';",
        "CREATE USER 'evil'@'%' IDENTIFIED BY 'x';",
        "USE mysql;",
        "SET PASSWORD FOR 'root'@'localhost' = PASSWORD('owned');",
        "SELECT 'x' INTO OUTFILE '/tmp/backupsite-outfile-test';",
        "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t;",
        "\\! touch /tmp/backupsite-hostile-dump-ran",
        "system touch /tmp/backupsite-hostile-dump-ran",
    ]
    for statement in statements:
        dump = b"CREATE TABLE t (line TEXT);\n" + statement.encode() + b"\n"
        backup = make_native_backup(
            restore_native_destination, restore_account, databases=[SqlDump(target, dump)], home=False
        )
        item = run_restore(
            backup.snapshot, {"parts": [{"kind": "databases", "name": target}], "confirm_overwrite": True}
        )
        assert item.status == QueueItem.Status.FAILED, statement
        assert restore_mysql.list_databases(target) == [], statement  # a new database is dropped again
    assert restore_mysql.list_databases(other) == []
    assert restore_mysql.query("SELECT User FROM mysql.user WHERE User = 'evil'") == []
    assert not os.path.exists("/tmp/backupsite-outfile-test")
    assert not os.path.exists("/tmp/backupsite-hostile-dump-ran")
    restore_mysql.query("SELECT 1")  # root's password is unchanged: we still log in


def test_views_and_triggers_come_back_owned_by_the_account(
    restore_native_destination, restore_account: Account, restore_mysql: MysqlServer, live_database: str
) -> None:
    restore_mysql.query(
        "CREATE VIEW recent AS SELECT id, title FROM posts WHERE id > 190", database=live_database
    )
    restore_mysql.query(
        "CREATE TRIGGER upper_title BEFORE INSERT ON posts FOR EACH ROW SET NEW.title = UPPER(NEW.title)",
        database=live_database,
    )
    backup = _backup_with_database(restore_native_destination, restore_account, restore_mysql, live_database)
    restore_mysql.query("DROP VIEW recent", database=live_database)

    item = run_restore(
        backup.snapshot, {"parts": [{"kind": "databases", "name": live_database}], "confirm_overwrite": True}
    )

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    owner = f"{restore_account.username}@localhost"
    assert restore_mysql.query(
        f"SELECT TABLE_NAME, DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '{live_database}'"
    ) == [["recent", owner]]
    assert restore_mysql.query(
        f"SELECT TRIGGER_NAME, DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{live_database}'"
    ) == [["upper_title", owner]]
    assert len(rows(restore_mysql, live_database, "posts")) == 200
    assert leftover_restore_users(restore_mysql) == []


# --- refusals ---------------------------------------------------------------------------------------


def test_a_backup_is_never_restored_into_another_account(
    backup, restore_account: Account, tmp_path: Path
) -> None:
    """GIVEN a queue item that names another account than the backup's WHEN it runs THEN it is
    refused and the other account's home is untouched."""
    from jobs.restore.request import queue_restore, validate_request

    other_home = tmp_path / "homes" / "other"
    other_home.mkdir(parents=True)
    other = Account.objects.create(username=f"{restore_account.username}x", home=str(other_home))
    request = validate_request(backup.snapshot, {"whole_account": True, "confirm_overwrite": True})
    item = queue_restore(backup.snapshot, request, None)
    QueueItem.objects.filter(pk=item.pk).update(account=other)

    from tests.support.fixtures_restore import run_item

    item = run_item(item)

    assert item.status == QueueItem.Status.FAILED
    assert "another account" in item.error
    assert list(other_home.iterdir()) == []
    assert not any(p.name.startswith("restore-") for p in Path(restore_account.home).iterdir())


def test_a_backup_that_is_not_restorable_is_refused_before_anything_is_written(
    backup, restore_account: Account
) -> None:
    from jobs.restore.request import queue_restore, validate_request

    request = validate_request(backup.snapshot, {"whole_account": True, "confirm_overwrite": True})
    item = queue_restore(backup.snapshot, request, None)
    Snapshot.objects.filter(pk=backup.snapshot.pk).update(state=Snapshot.State.UPDATING)

    from tests.support.fixtures_restore import run_item

    item = run_item(item)

    assert item.status == QueueItem.Status.FAILED
    assert "not complete" in item.error
    assert not any(p.name.startswith("restore-") for p in Path(restore_account.home).iterdir())


def test_files_are_refused_for_an_account_whose_home_is_gone(backup, restore_account: Account) -> None:
    from jobs.restore.request import queue_restore, validate_request

    request = validate_request(backup.snapshot, {"paths": ["public_html"]})
    item = queue_restore(backup.snapshot, request, None)
    shutil.rmtree(restore_account.home)

    from tests.support.fixtures_restore import run_item

    item = run_item(item)

    assert item.status == QueueItem.Status.FAILED
    assert "does not exist" in item.error
