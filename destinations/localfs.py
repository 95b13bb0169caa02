"""Writing a restored tree into a local folder without ever writing through a symlink.

Restores run as root and write into folders that users control, so every write goes through
directory file descriptors opened with O_NOFOLLOW | O_DIRECTORY, starting at the root that the
caller chose. A path from a backup is data, not a path: it is refused when absolute, when it
holds '..', '.', an empty component or NUL.

Conflict policy (one rule for every restore engine):
- Something other than a real directory in the way of a parent folder (a symlink, a file) is
  refused with `UnsafePath`, unless the call says `replace=True`: then that symlink or file
  itself is unlinked (never followed) and a real directory is created in its place.
- A final name that exists is refused with `FileExistsError` unless `overwrite=True`. With
  `overwrite`, a file or symlink is replaced atomically (rename over it); a directory is never
  removed to make room for a file or a link (refused with `UnsafePath`).
- Files are written under a temporary name in the target folder and renamed into place by
  `finish_file`, so a failed restore never leaves a half-written file under the real name.
- setuid and setgid bits are always dropped; the sticky bit is kept.
- With `owner`, everything created is chowned (lchown for links) to that (uid, gid), or to
  the (uid, gid) a call names for its entry (a restore puts back the owners a backup
  recorded); without it, nothing is chowned at all (not running as root).

Plain Python (no Django): the native format's restore (``destinations.formats.native.restore``)
writes through it too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections import OrderedDict
from pathlib import Path
from types import TracebackType

from backupsite.errors import Error
from destinations import names

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MODE_MASK = 0o1777  # permission bits and sticky; setuid/setgid dropped
_FD_CACHE_SIZE = 64
_TMP_PREFIX = b".backupsite-restore-"


class UnsafePath(Error):
    """A path that is not a plain relative path, or that would write through a symlink."""


def split_relative(rel: str | bytes) -> tuple[bytes, ...]:
    """The components of a safe relative path; raises UnsafePath for anything else.

    A str is encoded as UTF-8 with surrogateescape (destinations.names), so names that are not
    valid UTF-8 come back as their bytes.
    """
    raw = names.to_bytes(rel) if isinstance(rel, str) else rel
    if not raw:
        raise UnsafePath("empty path")
    if b"\x00" in raw:
        raise UnsafePath(f"path contains NUL: {raw!r}")
    if raw.startswith(b"/"):
        raise UnsafePath(f"absolute path refused: {raw!r}")
    parts = tuple(raw.split(b"/"))
    for part in parts:
        if part in (b"", b".", b".."):
            raise UnsafePath(f"path component {part!r} refused in {raw!r}")
    return parts


def safe_mode(mode: int) -> int:
    return mode & _MODE_MASK


class SafeFile:
    """A file being written under a temporary name; finish it with `SafeTree.finish_file`."""

    def __init__(self, fd: int, parent_fd: int, tmp_name: bytes, final_name: bytes, rel: bytes) -> None:
        self.fd = fd
        self.parent_fd = parent_fd
        self.tmp_name = tmp_name
        self.final_name = final_name
        self.rel = rel
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        total = len(view)
        while view:
            done = os.write(self.fd, view)
            view = view[done:]
        return total

    def pwrite(self, data: bytes | bytearray | memoryview, offset: int) -> None:
        view = memoryview(data)
        while view:
            done = os.pwrite(self.fd, view, offset)
            view = view[done:]
            offset += done

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)


class SafeTree:
    """All writes under `root`, through directory file descriptors (see the module docstring)."""

    def __init__(self, root: Path, *, owner: tuple[int, int] | None = None) -> None:
        self.root = Path(root)
        self.owner = owner
        self._root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._fds: OrderedDict[tuple[bytes, ...], int] = OrderedDict()

    # --- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    def __enter__(self) -> SafeTree:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- directories ----------------------------------------------------------------------

    def _dir_fd(self, parts: tuple[bytes, ...], *, create: bool, replace: bool) -> int:
        """An fd for the directory `parts` (relative to root), creating missing folders."""
        if not parts:
            return self._root_fd
        cached = self._fds.get(parts)
        if cached is not None:
            self._fds.move_to_end(parts)
            return cached
        parent = self._dir_fd(parts[:-1], create=create, replace=replace)
        name = parts[-1]
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            fd = self._make_dir(parent, name, 0o755)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            # A symlink or a non-directory sits where a folder must be.
            if not replace:
                raise UnsafePath(
                    f"{b'/'.join(parts)!r} is a symlink or a file, not a folder; refused"
                ) from exc
            os.unlink(name, dir_fd=parent)
            fd = self._make_dir(parent, name, 0o755)
        self._fds[parts] = fd
        if len(self._fds) > _FD_CACHE_SIZE:
            # Evict the oldest entry that is not an ancestor of what we just opened.
            for key in list(self._fds):
                if key != parts[: len(key)]:
                    os.close(self._fds.pop(key))
                    break
        return fd

    def _owner(self, owner: tuple[int, int] | None) -> tuple[int, int] | None:
        """Whom to chown to: the call's owner, else the tree's; nobody when the tree has none."""
        return None if self.owner is None else owner or self.owner

    def _make_dir(self, parent: int, name: bytes, mode: int, owner: tuple[int, int] | None = None) -> int:
        # Created concurrently? The open below refuses anything but a real folder.
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o700, dir_fd=parent)
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        os.fchmod(fd, safe_mode(mode))
        if (chown := self._owner(owner)) is not None:
            os.fchown(fd, *chown)
        return fd

    def mkdir(
        self,
        rel: str | bytes,
        mode: int = 0o755,
        *,
        replace: bool = False,
        owner: tuple[int, int] | None = None,
    ) -> None:
        """Create the folder `rel` (and its parents, which get the tree's owner). An existing
        real folder is kept as is. Created with its final `owner` right away: a folder that
        belongs to root is never the account's, not even while it is being filled."""
        parts = split_relative(rel)
        parent = self._dir_fd(parts[:-1], create=True, replace=replace)
        name = parts[-1]
        try:
            st = os.lstat(name, dir_fd=parent)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISDIR(st.st_mode):
            if not replace:
                raise UnsafePath(f"{b'/'.join(parts)!r} exists and is not a folder; refused")
            os.unlink(name, dir_fd=parent)
            st = None
        if st is None:
            fd = self._make_dir(parent, name, mode, owner)
            old = self._fds.pop(parts, None)
            if old is not None:
                os.close(old)
            self._fds[parts] = fd

    def finish_dir(
        self,
        rel: str | bytes,
        mode: int | None = None,
        mtime_ns: int | None = None,
        *,
        owner: tuple[int, int] | None = None,
    ) -> None:
        """Set a folder's owner, mode and mtime (call after its content is written)."""
        parts = split_relative(rel)
        fd = self._dir_fd(parts, create=False, replace=False)
        if (chown := self._owner(owner)) is not None:
            os.fchown(fd, *chown)
        if mode is not None:
            os.fchmod(fd, safe_mode(mode))
        if mtime_ns is not None:
            os.utime(fd, ns=(mtime_ns, mtime_ns))

    # --- files ------------------------------------------------------------------------------

    def lstat(self, rel: str | bytes) -> os.stat_result | None:
        """lstat of `rel`, or None when it (or one of its parents) does not exist."""
        parts = split_relative(rel)
        try:
            parent = self._dir_fd(parts[:-1], create=False, replace=False)
            return os.lstat(parts[-1], dir_fd=parent)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _check_target(self, parent: int, name: bytes, rel: bytes, overwrite: bool) -> None:
        try:
            st = os.lstat(name, dir_fd=parent)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            raise UnsafePath(f"{rel!r} exists and is a folder; refused")
        if not overwrite:
            raise FileExistsError(errno.EEXIST, "exists", os.fsdecode(rel))

    def open_file(self, rel: str | bytes, *, overwrite: bool = False, replace: bool = False) -> SafeFile:
        """A new file for `rel`, written under a temporary name until `finish_file`."""
        parts = split_relative(rel)
        raw = b"/".join(parts)
        parent = self._dir_fd(parts[:-1], create=True, replace=replace)
        self._check_target(parent, parts[-1], raw, overwrite)
        for _attempt in range(5):
            tmp = _TMP_PREFIX + secrets.token_hex(6).encode()
            try:
                fd = os.open(
                    tmp,
                    os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,  # RDWR: re-hash
                    0o600,
                    dir_fd=parent,
                )
            except FileExistsError:
                continue
            # The handle keeps its own fd of the folder: the cache may close its copy meanwhile.
            return SafeFile(fd, os.dup(parent), tmp, parts[-1], raw)
        raise FileExistsError(errno.EEXIST, "could not create a temporary file", os.fsdecode(raw))

    def finish_file(
        self,
        handle: SafeFile,
        *,
        mode: int | None = None,
        mtime_ns: int | None = None,
        overwrite: bool = False,
        owner: tuple[int, int] | None = None,
    ) -> None:
        """Set owner, mode and mtime, then rename the file into place (or drop it on error)."""
        try:
            if (chown := self._owner(owner)) is not None:
                os.fchown(handle.fd, *chown)
            if mode is not None:
                os.fchmod(handle.fd, safe_mode(mode))  # after chown, which may clear bits
            if mtime_ns is not None:
                os.utime(handle.fd, ns=(mtime_ns, mtime_ns))
            os.close(handle.fd)
            handle.closed = True
            self._check_target(handle.parent_fd, handle.final_name, handle.rel, overwrite)
            os.rename(
                handle.tmp_name, handle.final_name, src_dir_fd=handle.parent_fd, dst_dir_fd=handle.parent_fd
            )
        except BaseException:
            self._drop(handle)
            raise
        os.close(handle.parent_fd)
        handle.parent_fd = -1

    def discard(self, handle: SafeFile) -> None:
        """Drop an unfinished file."""
        if handle.parent_fd >= 0:
            self._drop(handle)

    def _drop(self, handle: SafeFile) -> None:
        if not handle.closed:
            os.close(handle.fd)
            handle.closed = True
        try:
            os.unlink(handle.tmp_name, dir_fd=handle.parent_fd)
        except FileNotFoundError:
            pass
        finally:
            os.close(handle.parent_fd)
            handle.parent_fd = -1

    # --- symlinks ---------------------------------------------------------------------------

    def symlink(
        self,
        rel: str | bytes,
        target: str | bytes,
        *,
        mtime_ns: int | None = None,
        overwrite: bool = False,
        replace: bool = False,
        owner: tuple[int, int] | None = None,
    ) -> None:
        """Create a symlink (its target is stored as is and never followed here)."""
        parts = split_relative(rel)
        raw = b"/".join(parts)
        link_target = names.to_bytes(target) if isinstance(target, str) else target
        if not link_target or b"\x00" in link_target:
            raise UnsafePath(f"invalid link target for {raw!r}")
        parent = self._dir_fd(parts[:-1], create=True, replace=replace)
        self._check_target(parent, parts[-1], raw, overwrite)
        tmp = _TMP_PREFIX + secrets.token_hex(6).encode()
        os.symlink(link_target, tmp, dir_fd=parent)
        try:
            if (chown := self._owner(owner)) is not None:
                os.chown(tmp, *chown, dir_fd=parent, follow_symlinks=False)
            if mtime_ns is not None:
                os.utime(tmp, ns=(mtime_ns, mtime_ns), dir_fd=parent, follow_symlinks=False)
            self._check_target(parent, parts[-1], raw, overwrite)
            os.rename(tmp, parts[-1], src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            os.unlink(tmp, dir_fd=parent)
            raise
