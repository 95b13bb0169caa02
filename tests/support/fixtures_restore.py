"""Fixtures for restores and downloads against the real pure-ftpd and MariaDB.

Register with `pytest_plugins = [..., "tests.support.fixtures_restore"]` in tests/conftest.py (the
restore test modules also load it themselves until then).

- `restore_mysql`: the MySQL/MariaDB server from settings (skips, or fails under CI, when absent).
- `mysql_cleanup`: a list of account names; every database and MySQL user named
  `<name>_…` (and `other_x`-style names added as `=<db>`) is dropped after the test.
- `restore_dirs`: DOWNLOADS_DIR and TEMP_DIR in the test's tmp_path.
- `restore_account`: an Account with a realistic home folder owned by uid/gid HOME_OWNER
  (in a `homes/` folder next to a `victim_folder/` folder that nothing may touch).
- `restore_native_destination`, `restore_cpanel_destination`: destinations on pure-ftpd (no TLS, no Redis).
- `make_native_backup(...)`, `index_cpanel(...)`, `run_restore(...)`, `run_download(...)`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from destinations.formats import native
from destinations.ftp import FtpSession
from destinations.models import Destination, Engine
from destinations.sessions import open_session
from jobs import catalog, mysql, queue
from jobs.dbserver.client import MysqlError, MysqlServer
from jobs.models import Account, QueueItem, Snapshot
from jobs.reindex import sync as reindex
from jobs.restore import downloads, runner
from jobs.restore.request import queue_download, queue_restore, validate_request
from tests.support.destinations import make_destination
from tests.support.fakes import Counting, write_test_backup
from tests.support.peers import missing_peer

HOME_OWNER = (4242, 4243)
CHUNK = 256 * 1024  # small chunks and packs: several packs from a small home
PACK = 512 * 1024


# --- MariaDB ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def restore_mysql() -> MysqlServer:
    server = mysql.server()
    try:
        server.query("SELECT 1")
        server.query("SHOW DATABASES")
    except (MysqlError, OSError) as exc:
        missing_peer(f"MariaDB/MySQL is not reachable at BACKUPSITE_MYSQL_URL: {exc}")
    return server


def _like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"


@pytest.fixture
def mysql_cleanup(restore_mysql: MysqlServer) -> Iterator[list[str]]:
    """Names to clean up: an account name drops `<name>_*` databases and users; `=db` one database."""
    names: list[str] = []
    yield names
    for name in names:
        if name.startswith("="):
            restore_mysql.query(f"DROP DATABASE IF EXISTS `{name[1:]}`")
            continue
        for db in restore_mysql.list_databases(_like(f"{name}_")):
            restore_mysql.query(f"DROP DATABASE IF EXISTS `{db}`")
        for user, host in restore_mysql.query(
            f"SELECT User, Host FROM mysql.user WHERE User LIKE '{_like(name + '_')}' OR User = '{name}'"
        ):
            restore_mysql.query(f"DROP USER IF EXISTS '{user}'@'{host}'")


def rows(server: MysqlServer, database: str, table: str) -> list[list[str]]:
    return server.query(f"SELECT * FROM `{table}` ORDER BY 1", database=database)


def leftover_restore_users(server: MysqlServer) -> list[list[str]]:
    return server.query("SELECT User FROM mysql.user WHERE User LIKE 'bs\\_restore\\_%'")


# --- folders ----------------------------------------------------------------------------------


@pytest.fixture
def restore_dirs(settings: Any, tmp_path: Path) -> Path:
    settings.DOWNLOADS_DIR = tmp_path / "downloads"
    settings.TEMP_DIR = tmp_path / "tmp"
    settings.TEMP_DIR.mkdir()
    return tmp_path


def build_home(home: Path, user: str, *, seed: int = 1) -> Path:
    """A cPanel-like home: a site, two mailboxes with their etc/ files, odd names, links."""
    rng = random.Random(seed)
    (home / "public_html" / "wp-content" / "uploads" / "2024").mkdir(parents=True)
    (home / "public_html" / "index.php").write_text("<?php require 'wp-blog-header.php';\n")
    (home / "public_html" / ".htaccess").write_text("RewriteEngine On\n")
    for i in range(30):
        text = "".join(f"<p>page {i} line {n} {rng.random()}</p>\n" for n in range(rng.randint(10, 400)))
        (home / "public_html" / f"page-{i:03d}.html").write_text(text)
    uploads = home / "public_html" / "wp-content" / "uploads" / "2024"
    (uploads / "photo.jpg").write_bytes(rng.randbytes(300_000))
    for i in range(6):
        (uploads / f"image-{i}.jpg").write_bytes(rng.randbytes(200_000))
    (home / "big.bin").write_bytes(rng.randbytes(CHUNK * 2 + 12_345))  # several chunks
    for box in ("info", "sales"):
        maildir = home / "mail" / "example.com" / box
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True)
        for n in range(4):
            (maildir / "cur" / f"17000000{n}.M{n}P1.host,S=40:2,S").write_text(
                f"Subject: {box} {n}\n\nbody {n}\n"
            )
        (maildir / "maildirsize").write_text("1073741824S\n")
    etc = home / "etc" / "example.com"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text(
        "".join(
            f"{b}:x:4242:4243::/home/{user}/mail/example.com/{b}:/home/{user}\n" for b in ("info", "sales")
        )
    )
    (etc / "shadow").write_text("info:$6$infohash:19800::::::\nsales:$6$saleshash:19800::::::\n")
    (etc / "quota").write_text("info:1073741824\nsales:524288000\n")
    (etc / "shadow").chmod(0o640)
    odd = home / "odd"
    odd.mkdir()
    for name in (b"with space.txt", b"new\nline.txt", b"latin1-\xe9t\xe9.txt", "unicodé-日本.txt".encode()):
        with open(os.path.join(os.fsencode(odd), name), "wb") as handle:
            handle.write(b"odd name " + name + b"\n")
    (home / "empty-folder").mkdir()
    (home / "private.txt").write_text("secret\n")
    (home / "private.txt").chmod(0o600)
    (home / "script.sh").write_text("#!/bin/sh\necho hi\n")
    (home / "script.sh").chmod(0o4755)
    os.symlink(f"/usr/local/apache/domlogs/{user}", home / "access-logs")
    os.symlink("public_html", home / "www")
    os.symlink("does/not/exist", home / "dangling")
    os.utime(home / "public_html" / "index.php", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    return home


def chown_tree(root: Path, owner: tuple[int, int]) -> None:
    os.lchown(root, *owner)
    for folder, dirs, files in os.walk(os.fsencode(root)):
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), *owner)


@pytest.fixture
def victim_folder(tmp_path: Path) -> Path:
    """A folder beside the homes that no restore may touch."""
    folder = tmp_path / "victim_folder"
    folder.mkdir()
    (folder / "keep.txt").write_text("must stay\n")
    return folder


@pytest.fixture
def restore_account(db: Any, tmp_path: Path, victim_folder: Path, mysql_cleanup: list[str]) -> Account:
    username = f"rs{secrets.token_hex(3)}"
    mysql_cleanup.append(username)
    home = build_home(tmp_path / "homes" / username, username)
    chown_tree(home, HOME_OWNER)
    return Account.objects.create(username=username, home=str(home))


# --- destinations -----------------------------------------------------------------------------


def _destination(pure_ftpd: Any, ftp_dir: str, engine: str) -> Destination:
    return make_destination(
        pure_ftpd,
        ftp_dir,
        name=f"{engine}-{secrets.token_hex(3)}",
        engine=engine,
        ssl=False,
        timeout=10,
        retries=2,
        concurrency=0,  # no Redis leases in these tests
        read_only=engine == Engine.CPANEL,
    )


@pytest.fixture
def restore_native_destination(db: Any, pure_ftpd: Any, ftp_dir: str, restore_dirs: Path) -> Destination:
    return _destination(pure_ftpd, ftp_dir, Engine.NATIVE)


@pytest.fixture
def restore_cpanel_destination(db: Any, pure_ftpd: Any, ftp_dir: str, restore_dirs: Path) -> Destination:
    (pure_ftpd.root / ftp_dir).mkdir(parents=True, exist_ok=True)
    return _destination(pure_ftpd, ftp_dir, Engine.CPANEL)


def cpanel_folder(pure_ftpd: Any, destination: Destination, date: str = "2025-07-04") -> Path:
    folder = pure_ftpd.root / destination.directory / date / "accounts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class NativeBackup:
    snapshot: Snapshot
    manifest: native.Manifest


def make_native_backup(
    destination: Destination,
    account: Account,
    *,
    databases: Sequence[Any] = (),
    home: bool = True,
) -> NativeBackup:
    """Write a native backup of `account` (home and `databases`) and index it as a job would."""
    backup_id = native.new_backup_id()
    with FtpSession(destination.ftp_settings(), max_connections=2, create_root=True) as session:
        manifest = write_test_backup(
            session,
            Path(account.home) if home else None,
            account=account.username,
            backup_id=backup_id,
            job_uuid="8c1e6f1e-0000-4000-8000-000000000001",
            job_name="restore tests",
            databases=list(databases),
            progress=native.NullProgress(),
            chunk_size=CHUNK,
            pack_size=PACK,
        )
    snapshot = Snapshot.objects.create(
        destination=destination,
        account=account,
        account_name=account.username,
        engine=Engine.NATIVE,
        path=native.backup_path(account.username, backup_id),
        created=manifest.created,
    )
    catalog.record_native(snapshot, manifest)
    return NativeBackup(snapshot, manifest)


class QuietReporter:
    """Enough of queue.Reporter for calling reindex directly."""

    def update(self, **_fields: Any) -> None:
        pass

    def log(self, _line: str) -> None:
        pass

    def check_abort(self) -> None:
        pass

    def abort_requested(self) -> bool:
        return False


def index_cpanel(destination: Destination) -> list[Snapshot]:
    with _open_session()(destination) as session:
        reindex.reindex_cpanel(destination, session, QuietReporter())  # type: ignore[arg-type]
    return list(Snapshot.objects.filter(destination=destination).order_by("path"))


# --- running items ------------------------------------------------------------------------------


class CountedSession:
    """A real FtpSession whose connections count what they transfer (tests.support.fakes.Counting)."""

    def __init__(self, session: FtpSession) -> None:
        self.session = session
        self.counting = Counting(session)
        self.max_connections = session.max_connections

    def connection(self) -> Any:
        return self.counting.connection()

    def __enter__(self) -> CountedSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()


_session_factories: list[Callable[[Destination], Any]] = []  # the innermost counted_sessions last


def _open_session() -> Callable[[Destination], Any]:
    """The session factory restores, downloads and index_cpanel are given: the real one, or
    counted_sessions' while that fixture is active."""
    return _session_factories[-1] if _session_factories else open_session


@pytest.fixture
def counted_sessions() -> Iterator[list[CountedSession]]:
    """Every session a restore or download opens, counted."""
    opened: list[CountedSession] = []

    def open_counted(destination: Destination) -> CountedSession:
        counted = CountedSession(open_session(destination))
        opened.append(counted)
        return counted

    _session_factories.append(open_counted)
    try:
        yield opened
    finally:
        _session_factories.remove(open_counted)


def run_item(item: QueueItem) -> QueueItem:
    body: Callable[[QueueItem, queue.Reporter], dict[str, Any] | None]
    run = runner.run if item.kind == QueueItem.Kind.RESTORE else downloads.run_download
    body = functools.partial(run, open_session=_open_session())
    queue.run_item(item.pk, item.kind, body)
    item.refresh_from_db()
    return item


def run_restore(snapshot: Snapshot, data: dict[str, Any], user: Any = None) -> QueueItem:
    """Validate, queue and run a restore in this process, as the API and a worker would."""
    request = validate_request(snapshot, data)
    return run_item(queue_restore(snapshot, request, user))


def run_download(snapshot: Snapshot, data: dict[str, Any], user: Any = None) -> QueueItem:
    request = validate_request(snapshot, data, for_download=True)
    return run_item(queue_download(snapshot, request, user))


def restored_folder(item: QueueItem) -> Path:
    folder = item.result.get("folder")
    assert folder, item.result
    return Path(folder)


@contextlib.contextmanager
def unchanged(*folders: Path) -> Iterator[None]:
    """Asserts that nothing under `folders` changes inside the block."""
    from tests.support.fakes import tree_state

    before = [tree_state(folder) for folder in folders]
    yield
    after = [tree_state(folder) for folder in folders]
    assert after == before
