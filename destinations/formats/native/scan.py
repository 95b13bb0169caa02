"""Walking a home folder, and opening its files, without ever following a symlink.

The walk goes through directory file descriptors (O_NOFOLLOW | O_DIRECTORY), so a user who
swaps a folder for a symlink while a backup runs cannot make the engine read elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import grp
import os
import pwd
import stat
import sys
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from destinations import names

from .common import display_path
from .manifest import Entry, Part, valid_owner_name

_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a file swapped for a FIFO after the scan must not block the open.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


@dataclass(frozen=True, slots=True)
class Skipped:
    path: bytes
    reason: str

    @property
    def display(self) -> str:
        return display_path(self.path)


@dataclass
class SourceTree:
    """What a scan found: entries in walk order (a folder before its content)."""

    root: Path
    entries: list[Entry] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    excluded: int = 0
    owner: tuple[int, int] = (0, 0)  # of the home folder: the account's uid and gid
    users: dict[int, str] = field(default_factory=dict)  # every uid seen -> its name here
    groups: dict[int, str] = field(default_factory=dict)  # every gid seen -> its name here

    @property
    def files(self) -> int:
        return sum(1 for entry in self.entries if entry.type == "f")

    @property
    def bytes(self) -> int:
        return sum(entry.size for entry in self.entries if entry.type == "f")

    def mailboxes(self) -> list[Part]:
        """`email_accounts` parts: cPanel Maildirs at mail/<domain>/<box>/ (with cur/ or new/).

        A folder whose name is not UTF-8 is no email address: it stays in the home folder part
        (a part name is text, and its shown form could name another folder)."""
        # Only entries under mail/ matter; on a big home most are not.
        mail = [entry for entry in self.entries if entry.path.startswith(b"mail/")]
        dirs = {entry.path for entry in mail if entry.type == "d"}
        boxes: dict[bytes, int] = {}
        for path in dirs:
            parts = path.split(b"/")
            if (
                len(parts) == 3
                and parts[0] == b"mail"
                and b"." in parts[1]
                and not parts[2].startswith(b".")
                and names.is_text(names.from_bytes(path))
                and (path + b"/cur" in dirs or path + b"/new" in dirs)
            ):
                boxes[path + b"/"] = 0
        for entry in mail if boxes else ():
            if entry.type != "f":
                continue
            prefix = b"/".join(entry.path.split(b"/", 3)[:3]) + b"/"
            if prefix in boxes:
                boxes[prefix] += entry.size
        result = []
        for prefix in sorted(boxes):
            _mail, domain, box = prefix[:-1].split(b"/")
            name = f"{display_path(box)}@{display_path(domain)}"
            result.append(Part("email_accounts", name, boxes[prefix]))
        return result


def _compile_excludes(excludes: Sequence[str]) -> list[bytes]:
    patterns = []
    for pattern in excludes:
        raw = os.fsencode(pattern.strip())
        while raw.startswith((b"/", b"./")):
            raw = raw[2:] if raw.startswith(b"./") else raw[1:]
        if raw:
            patterns.append(raw)
    return patterns


def is_excluded(rel: bytes, is_dir: bool, patterns: Sequence[bytes]) -> bool:
    """fnmatch against the relative path. A pattern ending in '/' matches folders only (tried
    against `path/`), so `cache/` excludes the folder and `tmp/*` only what is inside tmp.

    As in fnmatch, `*` also matches '/': `*.log` excludes .log files at any depth.
    An excluded folder is left out with everything in it.
    """
    for pattern in patterns:
        if pattern.endswith(b"/"):
            if is_dir and fnmatch.fnmatchcase(rel + b"/", pattern):
                return True
        elif fnmatch.fnmatchcase(rel, pattern):
            return True
    return False


def _kind_name(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def scan_source(home: Path, excludes: Sequence[str] = ()) -> SourceTree:
    """Walk `home` (never following symlinks); special files are skipped and reported."""
    tree = SourceTree(root=Path(home))
    patterns = _compile_excludes(excludes)
    root_fd = os.open(os.fsencode(home), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        root_st = os.fstat(root_fd)
        tree.owner = (root_st.st_uid, root_st.st_gid)
        _walk(root_fd, b"", tree, patterns)
    finally:
        os.close(root_fd)
    _name_owners(tree)
    return tree


def _name_owners(tree: SourceTree) -> None:
    """The names of the users and groups that own entries (and of the account's own ids), so
    that a restore on another system can find them by name."""
    uids = {tree.owner[0]} | {e.uid for e in tree.entries if e.uid is not None}
    gids = {tree.owner[1]} | {e.gid for e in tree.entries if e.gid is not None}
    for uid in uids:
        with contextlib.suppress(KeyError, OverflowError):
            if valid_owner_name(user := pwd.getpwuid(uid).pw_name):
                tree.users[uid] = user
    for gid in gids:
        with contextlib.suppress(KeyError, OverflowError):
            if valid_owner_name(group := grp.getgrgid(gid).gr_name):
                tree.groups[gid] = group


def _walk(dir_fd: int, prefix: bytes, tree: SourceTree, patterns: Sequence[bytes]) -> None:
    try:
        with os.scandir(dir_fd) as listing:
            names = sorted([item.name.encode(_FS_ENCODING, _FS_ERRORS) for item in listing])  # os.fsencode
    except OSError as exc:
        tree.skipped.append(Skipped(prefix.rstrip(b"/") or b".", f"cannot list folder: {exc.strerror}"))
        return
    entries = tree.entries
    home_uid, home_gid = tree.owner
    for name in names:
        rel = prefix + name
        try:
            st = os.lstat(name, dir_fd=dir_fd)
        except FileNotFoundError:
            continue  # vanished since the listing
        except OSError as exc:
            tree.skipped.append(Skipped(rel, f"cannot stat: {exc.strerror}"))
            continue
        mode = st.st_mode
        is_dir = stat.S_ISDIR(mode)
        if patterns and is_excluded(rel, is_dir, patterns):
            tree.excluded += 1
            continue
        # The account's own entries keep None (no per-entry cost in memory or manifest).
        uid = None if st.st_uid == home_uid else st.st_uid
        gid = None if st.st_gid == home_gid else st.st_gid
        if stat.S_ISREG(mode):
            entries.append(Entry(rel, "f", mode & 0o7777, st.st_mtime_ns, st.st_size, "", None, (), uid, gid))
        elif stat.S_ISLNK(mode):
            try:
                target = os.readlink(name, dir_fd=dir_fd)
            except OSError as exc:
                tree.skipped.append(Skipped(rel, f"cannot read link: {exc.strerror}"))
                continue
            tree.entries.append(
                Entry(rel, "l", stat.S_IMODE(mode), st.st_mtime_ns, link=target, uid=uid, gid=gid)
            )
        elif is_dir:
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                    continue  # swapped or removed since the lstat
                tree.skipped.append(Skipped(rel, f"cannot open folder: {exc.strerror}"))
                continue
            try:
                tree.entries.append(Entry(rel, "d", stat.S_IMODE(mode), st.st_mtime_ns, uid=uid, gid=gid))
                _walk(child, rel + b"/", tree, patterns)
            finally:
                os.close(child)
        else:
            tree.skipped.append(Skipped(rel, f"{_kind_name(mode)} skipped"))


class SourceReader:
    """Opens files of the tree by relative path through O_NOFOLLOW folder descriptors."""

    def __init__(self, root: Path) -> None:
        self._root = os.open(os.fsencode(root), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._dirs: OrderedDict[bytes, int] = OrderedDict()

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()
        os.close(self._root)

    def _dir(self, rel: bytes) -> int:
        if not rel:
            return self._root
        fd = self._dirs.get(rel)
        if fd is not None:
            self._dirs.move_to_end(rel)
            return fd
        parent_rel, _sep, name = rel.rpartition(b"/")
        parent = self._dir(parent_rel)
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        self._dirs[rel] = fd
        while len(self._dirs) > 32:
            # Never evict an ancestor of what was just opened (it may be in use further up).
            for key in self._dirs:
                if key != rel and not rel.startswith(key + b"/"):
                    os.close(self._dirs.pop(key))
                    break
            else:
                break
        return fd

    def open(self, rel: bytes) -> tuple[int, os.stat_result]:
        """An fd of the regular file `rel` and its fstat; OSError when it is gone or not a
        regular file any more (ELOOP for a symlink)."""
        parent_rel, _sep, name = rel.rpartition(b"/")
        fd = os.open(name, _FILE_FLAGS, dir_fd=self._dir(parent_rel))
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, "not a regular file any more")
        except BaseException:
            os.close(fd)
            raise
        return fd, st
