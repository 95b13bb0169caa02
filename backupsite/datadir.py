"""The data folder is private: only the user the panel runs as may read it.

It holds the SQLite database (sessions, API tokens, the admin's password hash), the keys,
the cached manifests that list every client's file names, prepared downloads and the
embedded Redis' files. Every process of the panel runs with umask 077, so what it creates is
0700/0600; `make_private` tightens what an older install (or a copy made with `cp -r`) left
open when a process starts; the system check (`backupsite.checks`) reports what is still open.
"""

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
# Group and other bits: on a hosting server every client with a shell is "other".
OPEN_BITS = stat.S_IRWXG | stat.S_IRWXO
# Sub-folders the panel writes into the data folder (the embedded Redis 7 keeps its
# append-only files in `appendonlydir`). Other sub-folders are left alone: the data folder
# may be pointed at a folder that also holds things that are not the panel's.
PANEL_FOLDERS = ("manifests", "downloads", "logs", "tmp", "appendonlydir")


def restrict_umask() -> None:
    """What this process (and every child it starts) creates is for its owner only."""
    os.umask(PRIVATE_UMASK)


def sqlite_files(database: Path) -> list[Path]:
    """The database file and the journals SQLite keeps next to it."""
    return [
        database,
        *(database.with_name(database.name + suffix) for suffix in ("-wal", "-shm", "-journal")),
    ]


def create(data_dir: Path) -> None:
    """Create the data folder 0700 (its parents as `mkdir -p` would)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


def open_to_others(path: Path) -> int | None:
    """The group/other bits of `path` (not following a link), or None when it is private or missing."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(mode) or not mode & OPEN_BITS:
        return None
    return stat.S_IMODE(mode)


def _tighten(path: Path, changed: list[Path]) -> None:
    mode = open_to_others(path)
    if mode is None:
        return
    try:
        os.chmod(path, mode & ~OPEN_BITS)
    except OSError as exc:  # not the owner: the system check reports it
        log.warning("could not make %s private: %s", path, exc)
        return
    changed.append(path)


def make_private(data_dir: Path, *, files: Iterable[Path] = ()) -> list[Path]:
    """Create the data folder 0700 or strip group/other bits from it, from the files directly
    in it, from everything under the panel's own sub-folders and from `files` (a SQLite
    database kept elsewhere). Links are not followed; the static files stay as they are (they
    are public). Returns what was changed."""
    create(data_dir)
    changed: list[Path] = []
    _tighten(data_dir, changed)
    with os.scandir(data_dir) as entries:
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                _tighten(Path(entry.path), changed)
    for name in PANEL_FOLDERS:
        top = data_dir / name
        if not top.is_dir() or top.is_symlink():
            continue
        _tighten(top, changed)
        for folder, dirs, names in os.walk(top):
            for child in (*dirs, *names):
                _tighten(Path(folder) / child, changed)
    for path in files:
        _tighten(path, changed)
    return changed


def secure_process(*, tighten: bool = True) -> None:
    """At the start of a panel process: umask 077, then make the configured data folder
    private. Settings that do not load are left for Django to report."""
    restrict_umask()
    if not tighten:
        return
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        data_dir = Path(settings.DATA_DIR)
        databases = [
            Path(db["NAME"]) for db in settings.DATABASES.values() if db["ENGINE"].endswith("sqlite3")
        ]
    except ImproperlyConfigured:
        return
    files = [path for db in databases for path in sqlite_files(db)]
    changed = make_private(data_dir, files=files)
    if changed:
        log.warning(
            "made %d path(s) in the data folder private (they were open to other users): %s",
            len(changed),
            ", ".join(str(path) for path in changed[:10]) + (" ..." if len(changed) > 10 else ""),
        )
