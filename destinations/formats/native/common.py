"""Names, limits, errors and protocols shared by the native engine's modules.

No Django here: the jobs layer calls the engine and owns the database.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, astuple, dataclass
from datetime import UTC, datetime
from typing import BinaryIO, Protocol, cast

from backupsite.errors import Error
from destinations.ftp import RemoteStore

MiB = 1024 * 1024
BLOCK_SIZE = MiB  # local and FTP I/O block
CHUNK_SIZE = 8 * MiB  # files above this are split into chunks of this raw size
# A pack is closed before it would grow past PACK_SIZE. Packs are assembled in memory (as lists
# of their chunks' buffers); packs filling and uploading are at most MAX_PARALLEL_UPLOADS + 1,
# so they take at most 48 MiB. 32 MiB packs measured no faster on 1 GB and pushed the
# worker's peak memory over 200 MB.
PACK_SIZE = 16 * MiB
MAX_PARALLEL_UPLOADS = 2
ZSTD_LEVEL = 3  # database dumps: one long stream
# Home files are compressed chunk by chunk, each chunk its own frame. Measured on the 1 GB
# benchmark home (bench/README.md): on inputs up to 1 MiB level 1 costs ~25 % less CPU than
# level 3 for ~4.5 % more bytes; on 8 MiB chunks level 2 is as fast as level 1 and within 2 %
# of level 3's size. Compression is the biggest CPU cost of a backup.
SMALL_ZSTD_LEVEL = 1  # chunks up to 1 MiB (small files, tails of big ones)
CHUNK_ZSTD_LEVEL = 2  # bigger chunks
MIN_SAVING = 0.05  # a chunk is stored raw unless zstd saves at least 5 %
MAX_CHUNK_RAW = 64 * MiB  # refuse manifests that claim bigger chunks (decompression bombs)
RECLAIM_LIVE_RATIO = 0.5  # an old pack whose live bytes fall below this share is rewritten
SMALL_PACK_RATIO = 0.25  # packs under this share of PACK_SIZE count as small ...
SMALL_PACKS_LIMIT = 16  # ... and are merged once a slot holds more than this many of them

FORMAT_NAME = "backupsite-native"
FORMAT_VERSION = 1
FORMAT_FILE = "BACKUPSITE-FORMAT.txt"
LOCK_FILE = "LOCKED"
PACKS_DIR = "packs"
DB_DIR = "db"

ACCOUNT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
BACKUP_ID_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
MANIFEST_RE = re.compile(r"^manifest-(\d{6})\.json\.zst$")
MANIFEST_TMP_RE = re.compile(r"^manifest-(\d{6})\.json\.zst\.tmp$")
PACK_RE = re.compile(r"^(\d{6})-(\d{5})\.pack$")
DUMP_RE = re.compile(r"^(.+)-(\d{6})\.sql\.zst$")


# --- errors ---------------------------------------------------------------------------------


class NativeError(Error):
    """Base of the native engine's own errors (FTP errors come from destinations.ftp)."""


class ManifestMissing(NativeError):
    """The folder holds no manifest: the backup was never committed (or was deleted)."""


class ManifestCorrupt(NativeError):
    """No manifest in the folder could be read completely and validated."""


class SlotConflict(NativeError):
    """The slot is not in the state the caller expected (already committed, or changed)."""


class BackupAborted(NativeError):
    """An admin asked to stop; nothing was committed."""


class DumpFailed(NativeError):
    """A database dump failed in every attempt."""


class UploadNotVerified(NativeError):
    """An upload finished but the server reports another size."""


class ObjectCorrupt(NativeError):
    """Bytes read back do not match their recorded size or sha256."""


# --- progress and protocols -----------------------------------------------------------------


@dataclass(frozen=True)
class ProgressCounts:
    """The six counts of one progress report. `+` adds them field by field (the accounts of a
    run summed into one bar, a stage's counts on top of the stages before it)."""

    bytes_done: int = 0
    bytes_total: int = 0
    files_done: int = 0
    files_total: int = 0
    bytes_unchanged: int = 0
    files_unchanged: int = 0

    def __add__(self, other: ProgressCounts) -> ProgressCounts:
        return ProgressCounts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def as_fields(self) -> dict[str, int]:
        """The counts as keyword arguments (of `ProgressSink.progress`, `Reporter.update`)."""
        return asdict(self)


class ProgressSink:
    """Where the engine reports. Always called from the thread that called the engine.

    `progress` is called at most a few times a second; `abort_requested` is polled between
    files and packs (at most every ~0.5 s, so it may hit the database). The `*_unchanged`
    counts are the part of `*_done` an incremental run kept from the previous backup without
    sending it again, so a page can say "1.2 KiB sent, 21.0 MiB unchanged".

    The base class of every sink: `progress` packs its arguments into `ProgressCounts` and
    hands them to `report`, which a sink overrides (as it does `log` and `abort_requested`).
    By default a sink drops counts and lines and never aborts.
    """

    def progress(
        self,
        *,
        bytes_done: int,
        bytes_total: int,
        files_done: int,
        files_total: int,
        bytes_unchanged: int = 0,
        files_unchanged: int = 0,
    ) -> None:
        self.report(
            ProgressCounts(bytes_done, bytes_total, files_done, files_total, bytes_unchanged, files_unchanged)
        )

    def report(self, counts: ProgressCounts) -> None:
        pass

    def log(self, message: str, *, level: str = "info") -> None:
        pass

    def abort_requested(self) -> bool:
        return False


class NullProgress(ProgressSink):
    """A ProgressSink that records log lines and never aborts."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def log(self, message: str, *, level: str = "info") -> None:
        self.lines.append((level, message))


class Session(Protocol):
    """Several logged-in connections to one destination (destinations.ftp.FtpSession)."""

    max_connections: int

    def connection(self) -> AbstractContextManager[RemoteStore]: ...


class DumpSource(Protocol):
    """A database to dump: `open()` yields the raw SQL stream (the jobs layer runs mariadb-dump)."""

    @property
    def name(self) -> str: ...

    def open(self) -> AbstractContextManager[BinaryIO]: ...


def is_session(target: Session | RemoteStore) -> bool:
    return callable(getattr(target, "connection", None))


def borrow(target: Session | RemoteStore) -> AbstractContextManager[RemoteStore]:
    """A connection from a session, or the store itself."""
    if is_session(target):
        return cast(Session, target).connection()
    return contextlib.nullcontext(cast(RemoteStore, target))


def connection_slots(target: Session | RemoteStore, cap: int) -> int:
    """How many connections to use at once: the session's limit (0 = unlimited) capped at `cap`."""
    if not is_session(target):
        return 1
    limit = int(getattr(target, "max_connections", 1) or 0)
    return cap if limit <= 0 else max(1, min(limit, cap))


# --- names ----------------------------------------------------------------------------------


def new_backup_id(now: datetime | None = None) -> str:
    """`<UTC YYYYMMDDTHHMMSSZ>-<8 hex>`: sorts by time, unique per account."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def backup_path(account: str, backup_id: str) -> str:
    if not ACCOUNT_RE.match(account):
        raise ValueError(f"invalid account name {account!r}")
    if not BACKUP_ID_RE.match(backup_id):
        raise ValueError(f"invalid backup id {backup_id!r}")
    return f"{account}/{backup_id}"


def split_backup_path(path: str) -> tuple[str, str]:
    """(account, backup_id) of `<account>/<backup_id>` (the last two components)."""
    parts = [part for part in path.strip("/").split("/") if part]
    if len(parts) < 2 or not ACCOUNT_RE.match(parts[-2]) or not BACKUP_ID_RE.match(parts[-1]):
        raise ValueError(f"not a native backup path: {path!r}")
    return parts[-2], parts[-1]


def manifest_name(generation: int) -> str:
    return f"manifest-{generation:06d}.json.zst"


def pack_name(generation: int, number: int) -> str:
    return f"{generation:06d}-{number:05d}.pack"


_DB_SAFE = re.compile(rb"[A-Za-z0-9_.-]")


def dump_object(db_name: str, generation: int) -> str:
    """`db/<name>-<gen>.sql.zst`, with bytes outside [A-Za-z0-9_.-] written as %XX."""
    raw = db_name.encode("utf-8", "surrogateescape")
    safe = "".join(chr(byte) if _DB_SAFE.fullmatch(bytes([byte])) else f"%{byte:02X}" for byte in raw)
    if safe.startswith((".", "-")):
        safe = f"%{ord(safe[0]):02X}{safe[1:]}"
    return f"{DB_DIR}/{safe}-{generation:06d}.sql.zst"


def display_path(path: bytes) -> str:
    """A path for log lines and the UI (non-UTF-8 bytes shown as \\xNN)."""
    return path.decode("utf-8", "backslashreplace")


def iter_blocks(stream: BinaryIO, size: int = BLOCK_SIZE) -> Iterator[bytes]:
    while True:
        block = stream.read(size)
        if not block:
            return
        yield block
