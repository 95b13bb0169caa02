"""Writing a native backup: a full backup (generation 1) or an incremental push onto a slot.

Pipeline (all plain threads; zstandard, hashlib and system calls release the GIL):
- the calling thread walks the files to store in scan order. Files under 1 MiB go in batches
  of ~1 MiB to the workers, which open them (O_NOFOLLOW, through O_NOFOLLOW folder
  descriptors of their own), read each with one read(), hash and compress them. Bigger files
  are read here in 8 MiB chunks (one read() each, into a fresh bytes object); the workers hash
  the chunks in file order (each waits for the previous chunk's hash update) and compress them
  in parallel;
- results are taken back in submission order and appended to the current pack, which is a
  list of the chunks' buffers: nothing is copied into a pack buffer;
- a full pack is handed to an upload thread that borrows one of the session's connections,
  hashes the pack, uploads it with `upload_file` (the seam retries and resumes) and verifies
  its size. At most MAX_PARALLEL_UPLOADS packs upload while the next one fills.
Only the calling thread talks to the ProgressSink.
"""

from __future__ import annotations

import bisect
import collections
import concurrent.futures
import contextlib
import errno
import hashlib
import io
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeAlias

import zstandard

from destinations.ftp import (
    ConnectFailed,
    FtpError,
    FtpTimeout,
    RemoteStore,
    TransientError,
)

from .common import (
    CHUNK_SIZE,
    CHUNK_ZSTD_LEVEL,
    DB_DIR,
    DUMP_RE,
    FORMAT_FILE,
    MANIFEST_RE,
    MANIFEST_TMP_RE,
    MAX_PARALLEL_UPLOADS,
    MIN_SAVING,
    PACK_RE,
    PACK_SIZE,
    PACKS_DIR,
    RECLAIM_LIVE_RATIO,
    SMALL_PACK_RATIO,
    SMALL_PACKS_LIMIT,
    SMALL_ZSTD_LEVEL,
    ZSTD_LEVEL,
    BackupAborted,
    DumpFailed,
    DumpSource,
    ManifestCorrupt,
    ManifestMissing,
    ProgressSink,
    Session,
    SlotConflict,
    UploadNotVerified,
    backup_path,
    borrow,
    connection_slots,
    display_path,
    dump_object,
    iter_blocks,
    pack_name,
)
from .format_text import FORMAT_TEXT
from .manifest import ChunkRef, Codec, DatabaseInfo, Entry, Manifest, PackInfo, Part, encode_manifest
from .read import read_manifest
from .scan import SourceReader, SourceTree, scan_source

UPLOAD_ATTEMPTS = 3
DUMP_ATTEMPTS = 3
BATCH_BYTES = 1024 * 1024  # small files are handed to the workers in batches of about this size
BATCH_FILES = 256
INFLIGHT_BYTES = 16 * 1024 * 1024  # raw bytes read but not yet packed
PROBE_MIN = 256 * 1024  # chunks above this get a cheap compressibility probe first
PROBE_SAMPLE = 64 * 1024
STREAM_MIN = 1024 * 1024  # chunks above this are compressed with the streaming API
SMALL_FILE = 1024 * 1024  # files under this are read in one call and handled in batches
MAX_SKIPPED_LOG_LINES = 200
RETRYABLE = (TransientError, FtpTimeout, ConnectFailed, UploadNotVerified)

# Formats that are already compressed: stored as is without trying zstd.
INCOMPRESSIBLE_SUFFIXES = frozenset(
    b".7z .aac .apk .avi .avif .br .bz2 .docx .epub .flac .flv .gif .gz .heic .jar .jpeg .jpg "
    b".lz .lz4 .lzma .m4a .m4v .mkv .mov .mp3 .mp4 .mpg .odp .ods .odt .ogg .opus .png .pptx .rar "
    b".tbz .tbz2 .tgz .txz .webm .webp .whl .wmv .woff .woff2 .xlsx .xz .zip .zst .tzst".split()
)

BackupType = Literal["full", "incremental"]
Buffer: TypeAlias = bytes | bytearray | memoryview


def _suffix(path: bytes) -> bytes:
    name = path.rpartition(b"/")[2]
    dot = name.rfind(b".")
    return name[dot:].lower() if dot > 0 else b""


# --- progress -------------------------------------------------------------------------------


class _Reporter:
    def __init__(self, sink: ProgressSink) -> None:
        self.sink = sink
        self.unstored: Callable[[], int] = lambda: 0  # bytes counted but not yet on the server
        self.bytes_done = 0
        self.bytes_total = 0
        self.files_done = 0
        self.files_total = 0
        self.bytes_unchanged = 0  # part of bytes_done kept from the previous backup, not sent
        self.files_unchanged = 0
        self._last_tick = 0.0
        self._last_abort = time.monotonic()
        self.skipped_logged = 0

    def tick(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_tick >= 0.25:
            self._last_tick = now
            self.sink.progress(
                bytes_done=max(0, self.bytes_done - self.unstored()),
                bytes_total=max(self.bytes_total, self.bytes_done),
                files_done=self.files_done,
                files_total=max(self.files_total, self.files_done),
                bytes_unchanged=self.bytes_unchanged,
                files_unchanged=self.files_unchanged,
            )

    def check_abort(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_abort >= 0.5:
            self._last_abort = now
            if self.sink.abort_requested():
                raise BackupAborted("the backup was aborted on request; nothing was committed")

    def log(self, message: str, level: str = "info") -> None:
        self.sink.log(message, level=level)

    def skipped(self, path: bytes, reason: str) -> None:
        self.skipped_logged += 1
        if self.skipped_logged <= MAX_SKIPPED_LOG_LINES:
            self.log(f"skipped {display_path(path)}: {reason}", "warning")
        elif self.skipped_logged == MAX_SKIPPED_LOG_LINES + 1:
            self.log("more files skipped; not listing them all", "warning")


# --- compression (worker threads) -------------------------------------------------------------

_local = threading.local()


@dataclass(frozen=True, slots=True)
class _Compressors:
    small: zstandard.ZstdCompressor  # inputs up to STREAM_MIN
    chunk: zstandard.ZstdCompressor  # bigger inputs (streamed)
    probe: zstandard.ZstdCompressor  # the cheap compressibility test


def _compressors() -> _Compressors:
    found: _Compressors | None = getattr(_local, "compressors", None)
    if found is None:
        found = _Compressors(
            small=zstandard.ZstdCompressor(level=SMALL_ZSTD_LEVEL, write_checksum=True),
            chunk=zstandard.ZstdCompressor(level=CHUNK_ZSTD_LEVEL, write_checksum=True),
            probe=zstandard.ZstdCompressor(level=1),
        )
        _local.compressors = found
    return found


def encode_chunk(data: bytes | bytearray | memoryview, compress: bool) -> tuple[list[Buffer], Codec]:
    """zstd frame (as pieces), or the raw bytes when zstd would save less than MIN_SAVING."""
    size = len(data)
    view = memoryview(data)
    if not compress or size < 64:
        return [view], "raw"
    compressors = _compressors()
    if size > PROBE_MIN:
        middle = size // 2
        sample = bytes(view[:PROBE_SAMPLE]) + bytes(view[middle : middle + PROBE_SAMPLE])
        if len(compressors.probe.compress(sample)) > len(sample) * (1 - MIN_SAVING):
            return [view], "raw"
    if size <= STREAM_MIN:
        out = compressors.small.compress(view)
        if len(out) > size * (1 - MIN_SAVING):
            return [view], "raw"
        # compress() keeps the compressBound-sized allocation behind its result.
        return [bytes(memoryview(out))], "zstd"
    # Big inputs: the streaming API never allocates a bound-sized (8 MiB) buffer.
    stream = compressors.chunk.compressobj(size=size)
    pieces: list[Buffer] = [stream.compress(view), stream.flush()]
    if sum(len(piece) for piece in pieces) > size * (1 - MIN_SAVING):
        return [view], "raw"
    return pieces, "zstd"


@dataclass(slots=True)
class _Encoded:
    pieces: list[Buffer]
    codec: Codec
    length: int
    sha256: str = ""
    mode: int = 0  # small files: what fstat said when the worker opened the file
    mtime_ns: int = 0

    @property
    def stored(self) -> int:
        return sum(len(piece) for piece in self.pieces)


_BIG = object()  # a "small" file that has grown past SMALL_FILE since the scan
_SmallOutcome: TypeAlias = _Encoded | OSError | object


def _read_small_batch(
    reader: Callable[[], SourceReader], items: list[tuple[bytes, bool]], limit: int
) -> list[_SmallOutcome]:
    """Open, read (one read of one byte more than fstat says), hash and compress small files.

    Runs in a worker thread, so the system calls of 20,000 small files overlap with the
    calling thread's packing. Per file: an _Encoded (with sha256, mode and mtime), the OSError
    that stopped it, or _BIG when it has grown past `limit` (the caller reads it as a big file).
    """
    source = reader()
    out: list[_SmallOutcome] = []
    for path, compress in items:
        try:
            fd, st = source.open(path)
        except OSError as exc:
            out.append(exc)
            continue
        try:
            data = os.read(fd, st.st_size + 1) if st.st_size < limit else b""
        except OSError as exc:
            out.append(exc)
            continue
        finally:
            os.close(fd)
        if len(data) > st.st_size or st.st_size >= limit:
            out.append(_BIG)
            continue
        pieces, codec = encode_chunk(data, compress) if data else ([], "raw")
        out.append(
            _Encoded(
                pieces,
                codec,
                len(data),
                hashlib.sha256(data).hexdigest(),
                st.st_mode & 0o7777,
                st.st_mtime_ns,
            )
        )
    return out


def _hash_and_encode(
    data: memoryview,
    compress: bool,
    digest: Any,
    after: threading.Event | None,
    hashed: threading.Event,
    last: bool,
) -> list[_Encoded]:
    """One chunk of a big file: hashed in file order (after the previous chunk's update, which
    runs in another worker), then compressed in parallel with the other chunks."""
    try:
        if after is not None:
            after.wait()
        digest.update(data)
        sha256 = digest.hexdigest() if last else ""
    finally:
        hashed.set()
    pieces, codec = encode_chunk(data, compress)
    return [_Encoded(pieces, codec, len(data), sha256)]


# --- packs ----------------------------------------------------------------------------------


class PartsReader(io.RawIOBase):
    """A seekable binary reader over a sequence of buffers (a pack in memory), without joining
    them first: each read() copies only the bytes it returns."""

    def __init__(self, parts: Sequence[Buffer]) -> None:
        super().__init__()
        self._parts = [memoryview(part).cast("B") for part in parts if len(part)]
        self._starts: list[int] = []
        size = 0
        for part in self._parts:
            self._starts.append(size)
            size += len(part)
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _slices(self, size: int) -> list[memoryview]:
        """Views of the next `size` bytes (fewer at the end); advances the position."""
        end = min(self._size, self._pos + size)
        out = []
        index = max(0, bisect.bisect_right(self._starts, self._pos) - 1)
        while self._pos < end:
            part, start = self._parts[index], self._starts[index]
            take = part[self._pos - start : end - start]
            out.append(take)
            self._pos += len(take)
            index += 1
        return out

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        done = 0
        for piece in self._slices(len(target)):
            target[done : done + len(piece)] = piece
            done += len(piece)
        return done

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self._size
        pieces = self._slices(size)
        return bytes(pieces[0]) if len(pieces) == 1 else b"".join(pieces)


def _retry_pause(attempt: int) -> None:
    time.sleep(min(2.0**attempt, 20.0) * (0.5 + random.random()))


def upload_verified(conn: RemoteStore, path: str, source: io.RawIOBase | io.BytesIO, size: int) -> None:
    """Upload and insist that the server reports holding exactly `size` bytes."""
    got = conn.upload_file(path, source)  # type: ignore[arg-type]
    if got != size:
        raise UploadNotVerified(f"{path}: the server holds {got} bytes, {size} were sent")


@dataclass(slots=True)
class _OpenPack:
    name: str
    parts: list[Buffer] = field(default_factory=list)
    size: int = 0
    raw: int = 0  # source bytes of its chunks


class _Packer:
    """Collects chunks into packs; full packs upload in background threads.

    A pack is the list of its chunks' buffers (nothing is copied into a pack buffer). Chunks
    of files bigger than one chunk go into packs of their own (`owner`): when such a file
    changes, its old packs die whole and are deleted, instead of leaving half-dead shared packs
    that a later run must rewrite. Packs filling (shared, own) and uploading are at most
    slots + 1 together, so they take at most (slots + 1) * pack_size bytes of memory.
    """

    def __init__(self, target: Session | RemoteStore, base: str, generation: int, pack_size: int) -> None:
        self.target = target
        self.base = base
        self.generation = generation
        self.pack_size = pack_size
        self.number = 0  # the next pack's number
        self.slots = connection_slots(target, MAX_PARALLEL_UPLOADS)
        self._room = threading.Semaphore(self.slots + 1)  # packs filling or uploading
        self._shared: _OpenPack | None = None
        self._own: _OpenPack | None = None
        self._owner: object = None
        self._pool = concurrent.futures.ThreadPoolExecutor(self.slots, thread_name_prefix="pack-upload")
        self._futures: list[concurrent.futures.Future[PackInfo]] = []
        self.attempted: list[str] = []  # objects this run may have written (for cleanup)
        self.made_dir = False
        # Source bytes packed but not yet uploaded: progress counts a file once it is stored.
        self._unstored = 0
        self._unstored_lock = threading.Lock()

    def unstored(self) -> int:
        return self._unstored

    def _stored(self, raw: int) -> None:
        with self._unstored_lock:
            self._unstored -= raw

    def _open(self) -> _OpenPack:
        while not self._room.acquire(timeout=0.2):
            self._raise_failed()
        pack = _OpenPack(pack_name(self.generation, self.number))
        self.number += 1
        return pack

    def add(self, pieces: list[Buffer], codec: Codec, length: int, owner: object = None) -> ChunkRef:
        """Append one chunk; `owner` (a big file's job) keeps its chunks in packs of their own."""
        stored = len(pieces[0]) if len(pieces) == 1 else sum(len(piece) for piece in pieces)
        if owner is None:
            pack = self._shared
            if pack is not None and pack.size and pack.size + stored > self.pack_size:
                self._seal(pack)
                pack = None
            if pack is None:
                pack = self._shared = self._open()
        else:
            pack = self._own
            if pack is not None and (owner is not self._owner or pack.size + stored > self.pack_size):
                self._seal(pack)
                pack = None
            if pack is None:
                pack = self._own = self._open()
                self._owner = owner
        ref = ChunkRef(pack.name, pack.size, stored, codec, length)
        pack.parts.extend(pieces)
        pack.size += stored
        pack.raw += length
        with self._unstored_lock:
            self._unstored += length
        return ref

    def close_own(self) -> None:
        """The big file is complete: its last pack uploads now."""
        if self._own is not None:
            self._seal(self._own)

    def _raise_failed(self) -> None:
        for future in self._futures:
            if future.done() and future.exception() is not None:
                future.result()

    def _seal(self, pack: _OpenPack) -> None:
        if pack is self._shared:
            self._shared = None
        if pack is self._own:
            self._own, self._owner = None, None
        if not pack.size:
            self._room.release()
            self._stored(pack.raw)
            return
        self._raise_failed()
        if not self.made_dir:
            with borrow(self.target) as conn:
                conn.makedirs(f"{self.base}/{PACKS_DIR}")
            self.made_dir = True
        self.attempted.append(f"{PACKS_DIR}/{pack.name}")
        self._futures.append(self._pool.submit(self._upload, pack.name, pack.parts, pack.size, pack.raw))

    def seal(self) -> None:
        for pack in (self._own, self._shared):
            if pack is not None:
                self._seal(pack)

    def _upload(self, name: str, parts: list[Buffer], size: int, raw: int) -> PackInfo:
        try:
            digest = hashlib.sha256()
            for part in parts:
                digest.update(part)
            path = f"{self.base}/{PACKS_DIR}/{name}"
            for attempt in range(1, UPLOAD_ATTEMPTS + 1):
                try:
                    with borrow(self.target) as conn:
                        upload_verified(conn, path, PartsReader(parts), size)
                    break
                except RETRYABLE:
                    if attempt == UPLOAD_ATTEMPTS:
                        raise
                    _retry_pause(attempt)
            self._stored(raw)
            return PackInfo(name, size, digest.hexdigest())
        finally:
            parts.clear()
            self._room.release()

    def finish(self, tick: Callable[[], None] | None = None) -> dict[str, PackInfo]:
        self.seal()
        pending = set(self._futures)
        while pending:  # report the uploads' progress while they finish
            _, pending = concurrent.futures.wait(
                pending, timeout=0.25, return_when=concurrent.futures.FIRST_EXCEPTION
            )
            self._raise_failed()
            if tick is not None:
                tick()
        infos = {}
        for future in self._futures:
            info = future.result()
            infos[info.name] = info
        self._pool.shutdown()
        return infos

    def abandon(self) -> None:
        for future in self._futures:
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)


# --- reading source files -------------------------------------------------------------------


def _read_chunk(fd: int, size: int) -> bytes:
    """Up to `size` bytes from fd; fewer only at the end of the file. One read() fills it from
    the page cache into a fresh bytes object, which then goes into a pack as it is."""
    data = os.read(fd, size)
    while 0 < len(data) < size:  # a short read before the end (rare): keep reading
        more = os.read(fd, size - len(data))
        if not more:
            break
        data += more
    return data


@dataclass(slots=True)
class _InFlight:
    future: concurrent.futures.Future[list[_Encoded]] | concurrent.futures.Future[list[_SmallOutcome]]
    jobs: list[_FileJob]
    batch: bool
    last: bool
    raw: int


@dataclass(slots=True)
class _FileJob:
    entry: Entry  # as scanned
    previous: Entry | None = None  # the stored version: kept when the file cannot be read
    reclaim: bool = False
    chunks: list[ChunkRef] = field(default_factory=list)
    sha256: str = ""
    size: int = 0
    mode: int = 0
    mtime_ns: int = 0
    compress: bool = True


# --- the run --------------------------------------------------------------------------------


@dataclass
class _Plan:
    entries: list[Entry]  # final order (scan order)
    reused: dict[bytes, Entry]
    jobs: list[_FileJob]
    reclaimed_packs: set[str]


def plan_incremental(
    tree: SourceTree, previous: Manifest | None, pack_size: int, damaged_packs: Collection[str] = ()
) -> _Plan:
    """Which files keep their stored chunks, which are (re)packed, which old packs are reclaimed.

    A file with a chunk in one of `damaged_packs` (an integrity check found the pack missing
    or corrupt) is treated as changed, and its stored version is never reused, even in part:
    the slot is repaired by storing it again.

    Reclaim rule: an old pack whose live bytes fall below RECLAIM_LIVE_RATIO of its size, or,
    once more than SMALL_PACKS_LIMIT packs are smaller than SMALL_PACK_RATIO of the pack size,
    all of those, get their live files re-read from the local source (and checked against the
    recorded sha256) into this generation's packs; the old pack is deleted after the commit.
    Packs holding chunks of files bigger than one chunk are those files' own packs (see
    _Packer): a small one is not fragmentation, and does not count towards the small packs.
    """
    old = previous.entry_map() if previous else {}
    reused: dict[bytes, Entry] = {}
    jobs: list[_FileJob] = []
    damaged = set(damaged_packs)
    for entry in tree.entries:
        if entry.type != "f":
            continue
        before = old.get(entry.path)
        if before is not None and damaged and any(chunk.pack in damaged for chunk in before.chunks):
            jobs.append(_FileJob(entry))
            continue
        if before is not None and before.type == "f" and before.same_metadata(entry):
            # A new owner alone is new metadata, not new content: the chunks stay.
            reused[entry.path] = (
                before if before.same_owner(entry) else replace(before, uid=entry.uid, gid=entry.gid)
            )
        else:
            stored = before if before is not None and before.type == "f" else None
            jobs.append(_FileJob(entry, previous=stored))
    reclaimed: set[str] = set()
    if previous is not None and reused:
        live: collections.Counter[str] = collections.Counter()
        for entry in reused.values():
            for chunk in entry.chunks:
                live[chunk.pack] += chunk.stored
        big = previous.chunk_size or CHUNK_SIZE
        own_packs = {chunk.pack for entry in reused.values() if entry.size > big for chunk in entry.chunks}
        small = []
        for pack in previous.packs:
            if not live[pack.name]:
                continue
            if live[pack.name] < pack.size * RECLAIM_LIVE_RATIO:
                reclaimed.add(pack.name)
            elif pack.size < pack_size * SMALL_PACK_RATIO and pack.name not in own_packs:
                small.append(pack.name)
        if len(small) > SMALL_PACKS_LIMIT:
            reclaimed.update(small)
    if reclaimed:
        moved = {path for path, entry in reused.items() if any(c.pack in reclaimed for c in entry.chunks)}
        for entry in tree.entries:
            if entry.path in moved:
                jobs.append(_FileJob(entry, previous=reused.pop(entry.path), reclaim=True))
        order = {entry.path: index for index, entry in enumerate(tree.entries)}
        jobs.sort(key=lambda job: order[job.entry.path])
    return _Plan(tree.entries, reused, jobs, reclaimed)


class _Run:
    def __init__(
        self,
        target: Session | RemoteStore,
        base: str,
        generation: int,
        reporter: _Reporter,
        *,
        compression: bool,
        pack_size: int,
        chunk_size: int,
    ) -> None:
        self.target = target
        self.base = base
        self.generation = generation
        self.reporter = reporter
        self.compression = compression
        self.pack_size = pack_size
        self.chunk_size = chunk_size
        self.packer = _Packer(target, base, generation, pack_size)
        reporter.unstored = self.packer.unstored
        self.done: dict[bytes, Entry] = {}
        self.kept_previous = 0
        self.read_skipped = 0
        self.changed_on_reread = 0
        self.new_bytes = 0
        self.kept_prefix_bytes = 0  # of grown files, kept in their stored chunks
        self.dump_objects: list[str] = []

    def pack_files(
        self, root: Path, jobs: list[_FileJob], reclaimed: set[str] | frozenset[str] = frozenset()
    ) -> None:
        """Read, hash, compress and pack `jobs` in order (see the module docstring). Chunks in
        `reclaimed` packs are never kept."""
        workers = max(1, min(4, os.cpu_count() or 2))
        pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="pack-encode")
        inflight: collections.deque[_InFlight] = collections.deque()
        inflight_bytes = 0
        small_file = min(SMALL_FILE, self.chunk_size)
        batch: list[_FileJob] = []
        batch_items: list[tuple[bytes, bool]] = []
        batch_bytes = 0
        deferred: collections.deque[_FileJob] = collections.deque()  # small files that grew
        # One SourceReader (and its folder descriptors) per worker thread.
        readers: dict[int, SourceReader] = {}
        readers_lock = threading.Lock()

        def worker_reader() -> SourceReader:
            key = threading.get_ident()
            source = readers.get(key)
            if source is None:
                source = SourceReader(root)
                with readers_lock:
                    readers[key] = source
            return source

        def settle_oldest() -> None:
            nonlocal inflight_bytes
            item = inflight.popleft()
            inflight_bytes -= item.raw
            results = item.future.result()
            if item.batch:
                self._assemble_batch(results, item.jobs, deferred)
            else:
                result = results[0]
                assert isinstance(result, _Encoded)
                job = item.jobs[0]
                self._assemble_chunk(result, job, item.last, own=job.entry.size > self.chunk_size)

        def track(item: _InFlight) -> None:
            nonlocal inflight_bytes
            inflight.append(item)
            inflight_bytes += item.raw
            while inflight and (inflight_bytes > INFLIGHT_BYTES or len(inflight) > 4 * workers):
                settle_oldest()

        def flush_batch() -> None:
            nonlocal batch, batch_items, batch_bytes
            if batch:
                future = pool.submit(_read_small_batch, worker_reader, batch_items, small_file)
                track(_InFlight(future, batch, True, True, batch_bytes))
                batch, batch_items, batch_bytes = [], [], 0

        def read_big(job: _FileJob, fd: int, before: os.stat_result) -> None:
            """Read here in chunks; workers hash them in order and compress them in parallel."""
            digest = self._kept_prefix(job, fd, before, reclaimed) or hashlib.sha256()
            hashed: threading.Event | None = None
            prefix = b""
            while True:
                data = _read_chunk(fd, self.chunk_size - len(prefix))
                if prefix:
                    data, prefix = prefix + data, b""
                job.size += len(data)
                last = len(data) < self.chunk_size
                if not last and job.size >= before.st_size:
                    prefix = os.read(fd, 1)  # at the fstat size: is this the end?
                    last = not prefix
                done = threading.Event()
                chunk = memoryview(data)
                future = pool.submit(_hash_and_encode, chunk, job.compress, digest, hashed, done, last)
                hashed = done
                track(_InFlight(future, [job], False, last, len(data)))
                if last:
                    self._check_changed(job, fd, before)
                    return
                self.reporter.check_abort()

        def read_big_file(job: _FileJob) -> None:
            try:
                fd, before = reader.open(job.entry.path)
            except OSError as exc:
                self._unreadable(job, exc)
                return
            try:
                job.mode = before.st_mode & 0o7777
                job.mtime_ns = before.st_mtime_ns
                read_big(job, fd, before)
            except OSError as exc:
                # Chunks already packed for this file stay unreferenced in their pack.
                self._unreadable(job, exc)
            finally:
                os.close(fd)

        def read_deferred() -> None:
            while deferred:
                flush_batch()
                read_big_file(deferred.popleft())

        reader = SourceReader(root)
        try:
            for job in jobs:
                self.reporter.check_abort()
                self.reporter.tick()
                job.compress = self.compression and _suffix(job.entry.path) not in INCOMPRESSIBLE_SUFFIXES
                if job.entry.size < small_file:
                    batch.append(job)
                    batch_items.append((job.entry.path, job.compress))
                    batch_bytes += job.entry.size
                    if batch_bytes >= BATCH_BYTES or len(batch) >= BATCH_FILES:
                        flush_batch()
                else:
                    flush_batch()
                    read_big_file(job)
                if deferred:
                    read_deferred()
            flush_batch()
            while inflight or deferred:
                if deferred:
                    read_deferred()
                else:
                    settle_oldest()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            reader.close()
            for source in readers.values():
                source.close()

    def _kept_prefix(
        self, job: _FileJob, fd: int, before: os.stat_result, reclaimed: set[str] | frozenset[str]
    ) -> Any:
        """A file that grew by appending (a log, a mailbox) keeps the stored chunks of its old
        content: when the first `previous.size` bytes hash to the stored version's sha256, they
        are that version, so its whole chunks are still this file's first chunks. Returns the
        sha256 of the kept chunks' bytes, with fd at their end and the job holding them, or None
        (fd back at 0). Costs one read and hash of the old size; compressing is ~8x dearer.
        """
        previous = job.previous
        if previous is None or job.reclaim or before.st_size <= previous.size:
            return None
        kept: list[ChunkRef] = []
        for chunk in previous.chunks:
            if chunk.length != self.chunk_size or chunk.pack in reclaimed:
                break
            kept.append(chunk)
        kept_bytes = len(kept) * self.chunk_size
        if not kept or kept_bytes > previous.size:
            return None
        digest = hashlib.sha256()
        kept_digest = None
        if self._hash_read(fd, digest, kept_bytes):
            kept_digest = digest.copy()
            if (
                not self._hash_read(fd, digest, previous.size - kept_bytes)
                or digest.hexdigest() != previous.sha256
            ):
                kept_digest = None
        if kept_digest is None:
            os.lseek(fd, 0, os.SEEK_SET)
            return None
        os.lseek(fd, kept_bytes, os.SEEK_SET)
        job.chunks.extend(kept)
        job.size = kept_bytes
        self.reporter.bytes_done += kept_bytes
        self.reporter.bytes_unchanged += kept_bytes
        self.kept_prefix_bytes += kept_bytes
        return kept_digest

    def _hash_read(self, fd: int, digest: Any, count: int) -> bool:
        """Feed the next `count` bytes of fd to digest; False when the file ends before."""
        while count > 0:
            block = _read_chunk(fd, min(self.chunk_size, count))
            if not block:
                return False
            digest.update(block)
            count -= len(block)
        return True

    def _check_changed(self, job: _FileJob, fd: int, before: os.stat_result) -> None:
        after = os.fstat(fd)
        if after.st_mtime_ns != before.st_mtime_ns or after.st_size != job.size:
            # The recorded mtime is the one before reading, so the next run stores it again.
            self.reporter.log(
                f"{job.entry.display} changed while it was read; stored what was read", "warning"
            )

    def _unreadable(self, job: _FileJob, exc: OSError) -> None:
        gone = exc.errno in (errno.ENOENT, errno.ELOOP, errno.EINVAL)  # removed, or swapped for a link
        if job.previous is not None and not gone:
            self.done[job.entry.path] = job.previous
            self.kept_previous += 1
            self.reporter.log(
                f"{job.entry.display}: cannot read ({exc.strerror}); kept the version already stored",
                "warning",
            )
            return
        reason = "vanished or replaced since the scan" if gone else f"cannot read: {exc.strerror}"
        self.read_skipped += 1
        self.reporter.skipped(job.entry.path, reason)

    def _assemble_chunk(self, result: _Encoded, job: _FileJob, last: bool, *, own: bool = False) -> None:
        if result.length:
            job.chunks.append(
                self.packer.add(result.pieces, result.codec, result.length, job if own else None)
            )
        self.new_bytes += result.length
        self.reporter.bytes_done += result.length
        if last:
            if own:
                self.packer.close_own()
            job.sha256 = result.sha256
            self._finish_job(job)

    def _assemble_batch(
        self, results: Sequence[_SmallOutcome], jobs: list[_FileJob], grown: collections.deque[_FileJob]
    ) -> None:
        for job, result in zip(jobs, results, strict=True):
            if isinstance(result, _Encoded):
                job.size, job.mode, job.mtime_ns = result.length, result.mode, result.mtime_ns
                self._assemble_chunk(result, job, True)
            elif isinstance(result, OSError):
                self._unreadable(job, result)
            else:
                grown.append(job)  # read again as a big file

    def _finish_job(self, job: _FileJob) -> None:
        if job.reclaim and job.previous is not None and job.sha256 != job.previous.sha256:
            self.changed_on_reread += 1
            self.reporter.log(
                f"{job.entry.display}: content changed without a new mtime; stored the new content"
            )
        entry = job.entry
        self.done[entry.path] = Entry(
            entry.path,
            "f",
            job.mode,
            job.mtime_ns,
            job.size,
            job.sha256,
            None,
            tuple(job.chunks),
            entry.uid,
            entry.gid,
        )
        self.reporter.files_done += 1


def _stream_dump(conn: RemoteStore, path: str, db: DumpSource, reporter: _Reporter) -> tuple[int, int, str]:
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True).compressobj()
    digest = hashlib.sha256()
    size = stored = 0
    with db.open() as source, conn.open_upload(path) as upload:  # the upload buffers the writes
        for block in iter_blocks(source):
            digest.update(block)
            size += len(block)
            out = compressor.compress(block)
            upload.write(out)
            stored += len(out)
            reporter.bytes_done += len(block)
            reporter.bytes_total = max(reporter.bytes_total, reporter.bytes_done)
            reporter.tick()
            reporter.check_abort()
        out = compressor.flush()
        upload.write(out)
        stored += len(out)
    got = upload.stored
    if got != stored:
        raise UploadNotVerified(f"{path}: the server holds {got} bytes, {stored} were sent")
    return size, stored, digest.hexdigest()


def _write_dump(
    target: Session | RemoteStore, base: str, generation: int, db: DumpSource, run: _Run
) -> DatabaseInfo:
    obj = dump_object(db.name, generation)
    path = f"{base}/{obj}"
    run.dump_objects.append(obj)
    last: BaseException | None = None
    for attempt in range(1, DUMP_ATTEMPTS + 1):
        run.reporter.check_abort(force=True)
        done_before = run.reporter.bytes_done
        try:
            with borrow(target) as conn:
                if attempt == 1:
                    conn.makedirs(f"{base}/{DB_DIR}")
                size, stored, digest = _stream_dump(conn, path, db, run.reporter)
            run.reporter.log(f"database {db.name}: {size} bytes of SQL stored as {stored}")
            return DatabaseInfo(db.name, obj, size, stored, digest)
        except BackupAborted:
            raise
        except Exception as exc:  # the dump tool, the database server or the upload failed
            last = exc
            run.reporter.bytes_done = done_before
            run.reporter.log(
                f"database {db.name}: attempt {attempt} of {DUMP_ATTEMPTS} failed: {exc}", "warning"
            )
            if attempt < DUMP_ATTEMPTS:
                _retry_pause(attempt - 1)
    raise DumpFailed(f"the dump of database {db.name!r} failed {DUMP_ATTEMPTS} times: {last}") from last


# --- slot housekeeping ----------------------------------------------------------------------


def _is_ours(rel: str) -> bool:
    """Names the engine writes inside a backup folder (anything else is left alone)."""
    folder, _sep, name = rel.rpartition("/")
    if folder == "":
        return bool(MANIFEST_RE.match(name) or MANIFEST_TMP_RE.match(name))
    if folder == PACKS_DIR:
        return bool(PACK_RE.match(name) or (name.endswith(".tmp") and PACK_RE.match(name[:-4])))
    if folder == DB_DIR:
        return bool(DUMP_RE.match(name) or name.endswith(".sql.zst.tmp"))
    return False


def _listing(conn: RemoteStore, base: str) -> Iterator[str]:
    for folder in ("", PACKS_DIR, DB_DIR):
        path = f"{base}/{folder}" if folder else base
        try:
            entries = conn.listdir(path)
        except FtpError:
            continue  # missing folder
        for entry in entries:
            if entry.type == "file":
                yield f"{folder}/{entry.name}" if folder else entry.name


def _manifest_first(rel: str) -> tuple[int, str]:
    return (0 if rel.startswith("manifest-") else 1, rel)


def remove_objects(conn: RemoteStore, base: str, objects: Sequence[str], reporter: _Reporter | None) -> int:
    removed = 0
    for rel in sorted(objects, key=_manifest_first):
        try:
            conn.remove(f"{base}/{rel}")
            removed += 1
        except FtpError as exc:
            if conn.stat(f"{base}/{rel}") is not None and reporter is not None:
                reporter.log(f"could not delete {base}/{rel}: {exc}", "warning")
    return removed


def sweep(conn: RemoteStore, base: str, keep: set[str], reporter: _Reporter | None = None) -> int:
    """Delete every engine-written object in the backup folder that `keep` does not name."""
    stale = [rel for rel in _listing(conn, base) if _is_ours(rel) and rel not in keep]
    return remove_objects(conn, base, stale, reporter)


def ensure_format_file(conn: RemoteStore) -> None:
    if conn.stat(FORMAT_FILE) is None:
        conn.upload_file(FORMAT_FILE, io.BytesIO(FORMAT_TEXT.encode("utf-8")))


def _remove_failed_generation(conn: RemoteStore, base: str, generation: int) -> int:
    """Delete packs a failed run of `generation` left, probing names (listings may be cut)."""
    removed = misses = number = 0
    while misses < MAX_PARALLEL_UPLOADS + 3:  # uploading, plus the two packs that were filling
        path = f"{base}/{PACKS_DIR}/{pack_name(generation, number)}"
        if conn.size(path) is None:
            misses += 1
        else:
            misses = 0
            conn.remove(path)
            removed += 1
        number += 1
    return removed


def _holds_all_entries(manifest: Manifest) -> bool:
    """False for a header without its entries (list_backups decodes only headers)."""
    totals = manifest.totals
    expected = totals.get("files", 0) + totals.get("dirs", 0) + totals.get("links", 0)
    return len(manifest.entries) == expected


def _slot_manifest(conn: RemoteStore, base: str, previous: Manifest) -> Manifest:
    """The slot's current manifest. The caller's copy is used when the slot's newest manifest
    is that generation with that size and the copy holds every entry (the jobs layer has just
    read it from the destination); otherwise it is read again. Downloading and decoding the
    manifest of a 20,000-file home costs ~0.4 s, a good share of an incremental run."""
    return read_manifest(conn, base, cached=previous if _holds_all_entries(previous) else None)


def _prepare_slot(
    conn: RemoteStore, base: str, previous: Manifest | None, reporter: _Reporter
) -> Manifest | None:
    """Check the slot is as the caller believes, remove a failed run's leftovers, and return
    the slot's current manifest (None for a new backup)."""
    if previous is None:
        if conn.stat(base) is not None:
            try:
                existing = read_manifest(conn, base)
            except (ManifestMissing, ManifestCorrupt):
                existing = None
            if existing is not None:
                raise SlotConflict(
                    f"{base} already holds a committed backup (generation {existing.generation})"
                )
            removed = sweep(conn, base, set(), reporter)
            if removed:
                reporter.log(f"removed {removed} leftovers of an unfinished earlier run in {base}")
        conn.makedirs(base)
        return None
    current = _slot_manifest(conn, base, previous)
    if current.generation != previous.generation:
        raise SlotConflict(
            f"{base} is at generation {current.generation}, the caller expected {previous.generation}; "
            "refusing to update a slot that changed meanwhile"
        )
    removed = _remove_failed_generation(conn, base, current.generation + 1)
    removed += sweep(conn, base, current.referenced_objects(), reporter)
    if removed:
        reporter.log(f"removed {removed} leftovers of an unfinished earlier run in {base}")
    return current


def commit_manifest(
    conn: RemoteStore, base: str, data: bytes, name: str, on_rename: Callable[[], None]
) -> None:
    """Upload as .tmp, verify the size, rename into place: the backup exists from here on."""
    final = f"{base}/{name}"
    temp = final + ".tmp"
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        try:
            upload_verified(conn, temp, io.BytesIO(data), len(data))
            break
        except RETRYABLE:
            if attempt == UPLOAD_ATTEMPTS:
                raise
            _retry_pause(attempt)
    if conn.stat(final) is not None:
        conn.remove(final)  # an unreadable manifest of a failed run (a readable one is the current)
    on_rename()
    conn.rename(temp, final)
    got = conn.size(final)
    if got != len(data):
        raise UploadNotVerified(f"{final}: the server holds {got} bytes after the rename, not {len(data)}")


# --- entry point ----------------------------------------------------------------------------


def write_backup(
    session: Session | RemoteStore,
    *,
    account: str,
    backup_id: str,
    job_uuid: str,
    job_name: str,
    backup_type: BackupType,
    home: Path | None,
    excludes: Sequence[str],
    databases: Sequence[DumpSource],
    compression: bool,
    progress: ProgressSink,
    previous: Manifest | None = None,
    pack_size: int = PACK_SIZE,
    chunk_size: int = CHUNK_SIZE,
    damaged_packs: Collection[str] = (),
) -> Manifest:
    """Write a backup into `<account>/<backup_id>/` and commit it; returns the new manifest.

    `previous=None`: a new backup (generation 1); the folder must not hold a committed backup.
    `previous` = the slot's current manifest: push the changes onto it as generation + 1.
    Raises BackupAborted, DumpFailed, SlotConflict, FtpError; in all those cases nothing was
    committed and the slot's previous generation (if any) is untouched and still valid.
    """
    if backup_type not in ("full", "incremental"):
        raise ValueError(f"backup_type must be full or incremental, not {backup_type!r}")
    base = backup_path(account, backup_id)
    names = [db.name for db in databases]
    if len(set(names)) != len(names):
        raise ValueError(f"database names must be unique: {names}")
    if previous is not None and (previous.account, previous.backup_id) != (account, backup_id):
        raise SlotConflict(f"the previous manifest belongs to {previous.path}, not {base}")
    generation = 1 if previous is None else previous.generation + 1
    reporter = _Reporter(progress)
    created = datetime.now(UTC)
    reporter.check_abort(force=True)

    # Scan first: a home that cannot be read must not leave an empty slot behind.
    tree = scan_source(home, excludes) if home is not None else None
    with borrow(session) as conn:
        ensure_format_file(conn)
        # Plan from the manifest on the destination, not the caller's copy (which may be a
        # header without entries, e.g. from list_backups).
        current = _prepare_slot(conn, base, previous, reporter)
    plan = (
        plan_incremental(tree, current, pack_size, damaged_packs)
        if tree is not None
        else _Plan([], {}, [], set())
    )
    if tree is not None:
        for skipped in tree.skipped:
            reporter.skipped(skipped.path, skipped.reason)
        reporter.files_total = tree.files
        reporter.bytes_total = tree.bytes
        reporter.files_done = len(plan.reused)
        reporter.bytes_done = sum(entry.size for entry in plan.reused.values())
        reporter.files_unchanged = reporter.files_done
        reporter.bytes_unchanged = reporter.bytes_done
        reporter.log(
            f"{tree.files} files, {tree.bytes} bytes in {home}; {len(plan.jobs)} files to store, "
            f"{len(plan.reused)} unchanged"
            + (f"; rewriting {len(plan.reclaimed_packs)} sparse packs" if plan.reclaimed_packs else "")
        )
    reporter.tick(force=True)

    run = _Run(
        session,
        base,
        generation,
        reporter,
        compression=compression,
        pack_size=pack_size,
        chunk_size=chunk_size,
    )
    committing = False

    def mark_committing() -> None:
        nonlocal committing
        committing = True

    try:
        if tree is not None and plan.jobs:
            run.pack_files(tree.root, plan.jobs, plan.reclaimed_packs)
        packs = run.packer.finish(run.reporter.tick)
        reporter.check_abort(force=True)
        dumps = [_write_dump(session, base, generation, db, run) for db in databases]
        reporter.check_abort(force=True)

        entries: list[Entry] = []
        add = entries.append
        reused, done = plan.reused, run.done
        used_packs: set[str] = set()
        files = dirs = links = home_bytes = stored = 0
        for entry in plan.entries:
            kind = entry.type
            if kind == "f":
                found = reused.get(entry.path) or done.get(entry.path)
                if found is None:
                    continue  # could not be read, and no earlier version
                add(found)
                files += 1
                home_bytes += found.size
                for chunk in found.chunks:
                    used_packs.add(chunk.pack)
                    stored += chunk.stored
            else:
                add(entry)
                if kind == "d":
                    dirs += 1
                elif kind == "l":
                    links += 1
        old_packs = {pack.name: pack for pack in current.packs} if current else {}
        pack_infos = [packs.get(name) or old_packs[name] for name in sorted(used_packs)]
        parts: list[Part] = []
        if tree is not None:
            parts.append(Part("homedir", "", home_bytes))
        parts.extend(Part("databases", dump.name, dump.size) for dump in dumps)
        if tree is not None:
            parts.extend(tree.mailboxes())
        totals = {
            "files": files,
            "dirs": dirs,
            "links": links,
            "bytes": home_bytes,
            "stored": stored,
            "pack_bytes": sum(pack.size for pack in pack_infos),
            "packs": len(pack_infos),
            "new_bytes": run.new_bytes,
            "uploaded": sum(pack.size for pack in packs.values()) + sum(dump.stored for dump in dumps),
            "reused_files": len(plan.reused),
            "reclaimed_packs": len(plan.reclaimed_packs),
            "kept_unreadable": run.kept_previous,
            "changed_on_reread": run.changed_on_reread,
            "skipped": (len(tree.skipped) if tree is not None else 0) + run.read_skipped,
            "excluded": tree.excluded if tree is not None else 0,
            "database_bytes": sum(dump.size for dump in dumps),
            "database_stored": sum(dump.stored for dump in dumps),
        }
        manifest = Manifest(
            account=account,
            backup_id=backup_id,
            generation=generation,
            type=backup_type,
            job_uuid=job_uuid,
            job_name=job_name,
            created=created,
            hostname=socket.gethostname(),
            packs=pack_infos,
            databases=dumps,
            parts=parts,
            totals=totals,
            entries=entries,
            chunk_size=chunk_size,
        )
        if tree is not None:
            manifest.owner, manifest.users, manifest.groups = tree.owner, tree.users, tree.groups
        data = encode_manifest(manifest)
        manifest.stored_size = len(data)
        manifest.remember_encoded(data)
        reporter.check_abort(force=True)
        with borrow(session) as conn:
            commit_manifest(conn, base, data, manifest.name, mark_committing)
    except BaseException:
        run.packer.abandon()
        if not committing:
            _cleanup_failed(session, base, generation, run, fresh=previous is None, reporter=reporter)
        raise

    reporter.files_done = reporter.files_total
    reporter.tick(force=True)
    reporter.log(
        f"committed {base} generation {generation}: {totals['files']} files, {len(dumps)} databases, "
        f"{totals['uploaded']} bytes uploaded"
        + (f"; {run.kept_prefix_bytes} bytes of grown files kept as stored" if run.kept_prefix_bytes else "")
    )
    # Only now is the old generation's garbage safe to delete.
    keep = manifest.referenced_objects()
    garbage = set(run.packer.attempted) | set(run.dump_objects)
    if current is not None:
        garbage |= current.referenced_objects()
    try:
        with borrow(session) as conn:
            # By name (listings may be cut); a failed run's leftovers are swept before the next.
            remove_objects(conn, base, sorted(garbage - keep), reporter)
    except FtpError as exc:
        reporter.log(f"committed, but deleting old data failed ({exc}); the next run deletes it", "warning")
    return manifest


def _cleanup_failed(
    target: Session | RemoteStore, base: str, generation: int, run: _Run, *, fresh: bool, reporter: _Reporter
) -> None:
    """Best effort: remove what this run wrote. A later run's sweep removes whatever remains."""
    with contextlib.suppress(Exception), borrow(target) as conn:
        if fresh:
            conn.remove_tree(base)
        else:
            objects = set(run.packer.attempted) | set(run.dump_objects)
            objects.add(f"manifest-{generation:06d}.json.zst.tmp")
            for rel in sorted(objects):
                with contextlib.suppress(FtpError):
                    conn.remove(f"{base}/{rel}")
