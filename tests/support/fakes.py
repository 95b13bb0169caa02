"""Test doubles for the FTP seam, used only where a fault must be staged precisely.

- `LocalStore`: a RemoteStore over a local folder (paths relative to it, like the seam's).
- `FakeSession`: hands out LocalStores, at most `max_connections` at once.
- `Faults`: rules that make chosen operations fail (`faults.fail("upload", "*.pack", after=2)`).
- `Counting`: wraps any session or store and counts operations and data connections
  (LIST/MLSD, STOR, RETR each open one), so tests can count them against the real server too.
- For the native engine's tests: `Recorder` (a ProgressSink that keeps what it is told),
  `write_test_backup`, `SqlDump` (a DumpSource over bytes).
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import os
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from destinations.formats import native
from destinations.ftp import (
    EntryType,
    PathRefused,
    PermanentError,
    RemoteEntry,
    RemoteStore,
    TransientError,
)

DATA_OPERATIONS = frozenset({"listdir", "upload_file", "open_upload", "download"})


@dataclass
class _Rule:
    operation: str
    pattern: str
    after: int  # let this many matching calls succeed first
    times: int  # then fail this many (-1: forever)
    error: Callable[[str], BaseException]
    seen: int = 0


@dataclass
class Faults:
    rules: list[_Rule] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(
        self,
        operation: str,
        pattern: str = "*",
        *,
        after: int = 0,
        times: int = -1,
        error: Callable[[str], BaseException] | None = None,
    ) -> None:
        """Make `operation` on paths matching `pattern` fail (TransientError by default)."""
        self.rules.append(
            _Rule(operation, pattern, after, times, error or (lambda path: TransientError(f"staged: {path}")))
        )

    def clear(self) -> None:
        self.rules.clear()

    def check(self, operation: str, path: str) -> None:
        with self.lock:
            for rule in self.rules:
                if rule.operation != operation or not fnmatch.fnmatchcase(path, rule.pattern):
                    continue
                rule.seen += 1
                if rule.seen <= rule.after:
                    continue
                if rule.times >= 0 and rule.seen > rule.after + rule.times:
                    continue
                raise rule.error(path)


class LocalStore:
    """A RemoteStore over a local folder."""

    def __init__(self, root: Path, faults: Faults | None = None, listing_limit: int | None = None) -> None:
        self.root = Path(root)
        self.faults = faults or Faults()
        self.listing_limit = listing_limit  # like pure-ftpd's -L: longer listings are cut silently

    def _path(self, path: str) -> Path:
        parts = [part for part in path.split("/") if part not in ("", ".")]
        if ".." in parts or "\x00" in path:
            raise PathRefused(f"refused: {path!r}")
        return self.root.joinpath(*parts)

    def _entry(self, target: Path) -> RemoteEntry:
        st = target.lstat()
        kind: EntryType = "dir" if target.is_dir() else "file" if target.is_file() else "other"
        size = st.st_size if kind == "file" else None
        return RemoteEntry(target.name, kind, size, datetime.fromtimestamp(st.st_mtime, UTC))

    def listdir(self, path: str = "") -> list[RemoteEntry]:
        self.faults.check("listdir", path)
        target = self._path(path)
        if not target.is_dir():
            raise PermanentError(f"550 {path}: no such folder", code="550")
        return [self._entry(child) for child in sorted(target.iterdir())][: self.listing_limit]

    def stat(self, path: str) -> RemoteEntry | None:
        self.faults.check("stat", path)
        target = self._path(path)
        return self._entry(target) if target.exists() else None

    def size(self, path: str) -> int | None:
        self.faults.check("size", path)
        target = self._path(path)
        return target.stat().st_size if target.is_file() else None

    def makedirs(self, path: str) -> None:
        self.faults.check("makedirs", path)
        self._path(path).mkdir(parents=True, exist_ok=True)

    def upload_file(self, path: str, source: BinaryIO) -> int:
        self.faults.check("upload_file", path)
        target = self._path(path)
        if not target.parent.is_dir():
            raise PermanentError(f"553 {path}: no such folder", code="553")
        source.seek(0)
        with target.open("wb") as out:
            shutil.copyfileobj(source, out, 1024 * 1024)
            return out.tell()

    @contextlib.contextmanager
    def open_upload(self, path: str) -> Iterator[Any]:
        self.faults.check("open_upload", path)
        target = self._path(path)
        with target.open("wb") as out:
            writer = _Writer(out, self.faults, path)
            yield writer
        writer.stored = target.stat().st_size

    def download(self, path: str, *, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        self.faults.check("download", path)
        target = self._path(path)
        if not target.is_file():
            raise PermanentError(f"550 {path}: no such file", code="550")
        return self._read(target, offset, length)

    @staticmethod
    def _read(target: Path, offset: int, length: int | None) -> Iterator[bytes]:
        with target.open("rb") as handle:
            handle.seek(offset)
            remaining = length
            while remaining is None or remaining > 0:
                block = handle.read(1024 * 1024 if remaining is None else min(1024 * 1024, remaining))
                if not block:
                    return
                if remaining is not None:
                    remaining -= len(block)
                yield block

    def rename(self, src: str, dst: str) -> None:
        self.faults.check("rename", src)
        os.replace(self._path(src), self._path(dst))

    def remove(self, path: str) -> None:
        self.faults.check("remove", path)
        target = self._path(path)
        if not target.is_file():
            raise PermanentError(f"550 {path}: no such file", code="550")
        target.unlink()

    def rmdir(self, path: str) -> None:
        self.faults.check("rmdir", path)
        self._path(path).rmdir()

    def remove_tree(self, path: str) -> None:
        self.faults.check("remove_tree", path)
        target = self._path(path)
        if not path.strip("/"):
            raise PathRefused("refusing to remove the destination directory itself")
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


class _Writer:
    def __init__(self, out: io.BufferedWriter, faults: Faults, path: str) -> None:
        self.out = out
        self.faults = faults
        self.path = path
        self.stored: int | None = None

    def write(self, data: bytes) -> None:
        self.faults.check("write", self.path)
        self.out.write(data)


class FakeSession:
    """Like FtpSession: `with session.connection() as conn:` borrows one of a few stores."""

    def __init__(
        self,
        root: Path,
        max_connections: int = 2,
        faults: Faults | None = None,
        listing_limit: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_connections = max_connections
        self.faults = faults or Faults()
        self.listing_limit = listing_limit
        self._slots = threading.BoundedSemaphore(max_connections)

    @contextlib.contextmanager
    def connection(self) -> Iterator[LocalStore]:
        with self._slots:
            yield LocalStore(self.root, self.faults, self.listing_limit)


class Counting:
    """Counts what is asked of a session (or store). `data_connections` = LIST + STOR + RETR."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.max_connections = getattr(inner, "max_connections", 1)
        self.calls: Counter[str] = Counter()
        self.downloaded = 0
        self.lock = threading.Lock()

    @property
    def data_connections(self) -> int:
        return sum(self.calls[name] for name in DATA_OPERATIONS)

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.downloaded = 0

    @contextlib.contextmanager
    def connection(self) -> Iterator[_CountingStore]:
        with self.inner.connection() as conn:
            yield _CountingStore(conn, self)


class _CountingStore:
    def __init__(self, inner: RemoteStore, counter: Counting) -> None:
        self._inner = inner
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute
        counter = self._counter

        def counted(*args: Any, **kwargs: Any) -> Any:
            with counter.lock:
                counter.calls[name] += 1
            result = attribute(*args, **kwargs)
            if name == "download":
                return _counted_blocks(result, counter)
            return result

        return counted


def _counted_blocks(blocks: Iterator[bytes], counter: Counting) -> Iterator[bytes]:
    for block in blocks:
        with counter.lock:
            counter.downloaded += len(block)
        yield block


# --- helpers for the native engine's tests ---------------------------------------------------


class Recorder(native.ProgressSink):
    """A ProgressSink that records everything; aborts after `abort_after` polls when set."""

    def __init__(self, abort_after: int | None = None) -> None:
        self.lines: list[tuple[str, str]] = []
        self.updates: list[tuple[int, int, int, int]] = []
        self.polls = 0
        self.abort_after = abort_after

    def report(self, counts: native.ProgressCounts) -> None:
        self.updates.append((counts.bytes_done, counts.bytes_total, counts.files_done, counts.files_total))

    def log(self, message: str, *, level: str = "info") -> None:
        self.lines.append((level, message))

    def abort_requested(self) -> bool:
        self.polls += 1
        return self.abort_after is not None and self.polls > self.abort_after

    def text(self) -> str:
        return "\n".join(message for _level, message in self.lines)


def write_test_backup(session: Any, home: Path | None, **options: Any) -> native.Manifest:
    """`native.write_backup` with what a test rarely cares about filled in: a new full backup
    (job "j", uuid "u") of `home`, no excludes, no databases, compressed, progress recorded;
    `options` (at least `account`) add to or override that."""
    arguments: dict[str, Any] = {
        "backup_id": native.new_backup_id(),
        "job_uuid": "u",
        "job_name": "j",
        "backup_type": "full",
        "home": home,
        "excludes": [],
        "databases": [],
        "compression": True,
        "progress": Recorder(),
    }
    return native.write_backup(session, **(arguments | options))


class SqlDump:
    """A DumpSource over bytes; the first `fail_times` opens break off after half the data."""

    def __init__(self, name: str, data: bytes, fail_times: int = 0) -> None:
        self._name = name
        self.data = data
        self.fail_times = fail_times
        self.opens = 0

    @property
    def name(self) -> str:
        return self._name

    @contextlib.contextmanager
    def open(self) -> Iterator[BinaryIO]:
        self.opens += 1
        if self.opens <= self.fail_times:
            yield _Breaking(self.data[: len(self.data) // 2])
        else:
            yield io.BytesIO(self.data)


class _Breaking(io.BytesIO):
    def read(self, size: int | None = -1) -> bytes:
        block = super().read(size)
        if not block:
            raise OSError("mariadb-dump: Lost connection to server during query")
        return block


def tree_state(root: Path) -> dict[bytes, tuple[Any, ...]]:
    """What a restore must reproduce: per relative path, type, mode, mtime and content or target.

    setuid/setgid are masked (restores drop them); special files are left out (never backed up).
    """
    import hashlib
    import stat as stat_module

    state: dict[bytes, tuple[Any, ...]] = {}
    base = os.fsencode(root)
    for folder, dirs, files in os.walk(base):
        for name in dirs + files:
            full = os.path.join(folder, name)
            rel = os.path.relpath(full, base)
            st = os.lstat(full)
            mode = stat_module.S_IMODE(st.st_mode) & 0o1777
            if stat_module.S_ISLNK(st.st_mode):
                state[rel] = ("l", os.readlink(full), st.st_mtime_ns)
            elif stat_module.S_ISDIR(st.st_mode):
                state[rel] = ("d", mode, st.st_mtime_ns)
            elif stat_module.S_ISREG(st.st_mode):
                with open(full, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
                state[rel] = ("f", mode, st.st_mtime_ns, st.st_size, digest)
    return state


def make_everything_tree(root: Path, *, chunk_size: int) -> None:
    """Every kind of entry the native format must round-trip, plus a FIFO it must skip."""
    import random

    rng = random.Random(7)
    root.mkdir(parents=True, exist_ok=True)
    (root / "empty.txt").write_bytes(b"")
    (root / "small.php").write_bytes(b"<?php echo 'hello'; ?>\n" * 40)
    (root / "text-big.log").write_bytes(b"".join(b"GET /index.php?id=%d 200\n" % i for i in range(20000)))
    (root / "random-big.bin").write_bytes(rng.randbytes(chunk_size * 2 + 12345))  # > chunk, raw
    (root / "photo.jpg").write_bytes(rng.randbytes(3000))  # known incompressible suffix
    sub = root / "public_html" / "wp-content" / "cache"
    sub.mkdir(parents=True)  # an empty folder, deep
    (root / "public_html" / "index.html").write_bytes(b"<html>hi</html>\n")
    (root / "secret").mkdir(mode=0o700)
    (root / "secret" / "key").write_bytes(b"k")
    os.chmod(root / "secret" / "key", 0o600)
    (root / "script.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    os.chmod(root / "script.sh", 0o4755)  # noqa: S103 - setuid on purpose: must come back without it
    os.symlink("/etc/passwd", root / "link-absolute")
    os.symlink("../small.php", root / "public_html" / "link-relative")
    os.symlink("does/not/exist", root / "link-dangling")
    os.symlink("public_html", root / "link-to-folder")
    os.symlink(b"target-\xfe-not-utf8", os.path.join(os.fsencode(root), b"link-odd-target"))
    odd = [
        b"with space.txt",
        b"new\nline.txt",
        b"latin1-\xe9\xff.txt",  # not UTF-8
        "unicode-ñ-日本.txt".encode(),
        b"-leading-dash",
        b"x" * 250,
        b"tab\tand'quote\".txt",
    ]
    for name in odd:
        with open(os.path.join(os.fsencode(root), name), "wb") as handle:
            handle.write(b"odd name " + name)
    os.mkfifo(root / "a-fifo")
    mail = root / "mail" / "example.com" / "info"
    for folder in ("cur", "new", "tmp"):
        (mail / folder).mkdir(parents=True)
    (mail / "cur" / "1700000000.M1P2.host:2,S").write_bytes(b"Subject: hi\n\nbody\n")
    os.utime(root / "small.php", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
