"""Uploading a backup being written: packs (in background threads), database dumps, and
the manifest's commit, each verified by size and retried a few times.

A pack is the list of its chunks' buffers; PartsReader uploads it without joining them.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import hashlib
import io
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import zstandard

from destinations.ftp import ConnectFailed, FtpTimeout, RemoteStore, TransientError

from .common import (
    DB_DIR,
    MAX_PARALLEL_UPLOADS,
    PACKS_DIR,
    ZSTD_LEVEL,
    BackupAborted,
    DumpFailed,
    DumpSource,
    Session,
    UploadNotVerified,
    borrow,
    connection_slots,
    dump_object,
    iter_blocks,
    pack_name,
)
from .encode import Buffer
from .manifest import ChunkRef, Codec, DatabaseInfo, PackInfo
from .reporter import Reporter

UPLOAD_ATTEMPTS = 3
DUMP_ATTEMPTS = 3
RETRYABLE = (TransientError, FtpTimeout, ConnectFailed, UploadNotVerified)


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


class Packer:
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


# --- database dumps ---------------------------------------------------------------------------


def _stream_dump(conn: RemoteStore, path: str, db: DumpSource, reporter: Reporter) -> tuple[int, int, str]:
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


def write_dump(
    target: Session | RemoteStore,
    base: str,
    generation: int,
    db: DumpSource,
    reporter: Reporter,
    dump_objects: list[str],
) -> DatabaseInfo:
    obj = dump_object(db.name, generation)
    path = f"{base}/{obj}"
    dump_objects.append(obj)
    last: BaseException | None = None
    for attempt in range(1, DUMP_ATTEMPTS + 1):
        reporter.check_abort(force=True)
        done_before = reporter.bytes_done
        try:
            with borrow(target) as conn:
                if attempt == 1:
                    conn.makedirs(f"{base}/{DB_DIR}")
                size, stored, digest = _stream_dump(conn, path, db, reporter)
            reporter.log(f"database {db.name}: {size} bytes of SQL stored as {stored}")
            return DatabaseInfo(db.name, obj, size, stored, digest)
        except BackupAborted:
            raise
        except Exception as exc:  # the dump tool, the database server or the upload failed
            last = exc
            reporter.bytes_done = done_before
            reporter.log(f"database {db.name}: attempt {attempt} of {DUMP_ATTEMPTS} failed: {exc}", "warning")
            if attempt < DUMP_ATTEMPTS:
                _retry_pause(attempt - 1)
    raise DumpFailed(f"the dump of database {db.name!r} failed {DUMP_ATTEMPTS} times: {last}") from last
