"""Reading, hashing, compressing and packing the files of a backup being written.

Pipeline (all plain threads; zstandard, hashlib and system calls release the GIL):
- the calling thread walks the files to store in scan order. Files under 1 MiB go in batches
  of ~1 MiB to the workers, which open them (O_NOFOLLOW, through O_NOFOLLOW folder
  descriptors of their own), read each with one read(), hash and compress them. Bigger files
  are read here in 8 MiB chunks (one read() each, into a fresh bytes object); the workers hash
  the chunks in file order (each waits for the previous chunk's hash update) and compress them
  in parallel;
- results are taken back in submission order and appended to the current pack, which is a
  list of the chunks' buffers: nothing is copied into a pack buffer;
- a full pack is handed to an upload thread (upload.Packer) that borrows one of the session's connections,
  hashes the pack, uploads it with `upload_file` (the seam retries and resumes) and verifies
  its size. At most MAX_PARALLEL_UPLOADS packs upload while the next one fills.
Only the calling thread talks to the ProgressSink.
"""

from __future__ import annotations

import collections
import concurrent.futures
import errno
import hashlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from destinations.ftp import RemoteStore

from .common import Session
from .encode import Encoded, SmallOutcome, hash_and_encode, read_small_batch
from .manifest import ChunkRef, Entry
from .plan import FileJob
from .reporter import Reporter
from .scan import SourceReader
from .upload import Packer

BATCH_BYTES = 1024 * 1024  # small files are handed to the workers in batches of about this size
BATCH_FILES = 256
INFLIGHT_BYTES = 16 * 1024 * 1024  # raw bytes read but not yet packed
SMALL_FILE = 1024 * 1024  # files under this are read in one call and handled in batches

# Formats that are already compressed: stored as is without trying zstd.
INCOMPRESSIBLE_SUFFIXES = frozenset(
    b".7z .aac .apk .avi .avif .br .bz2 .docx .epub .flac .flv .gif .gz .heic .jar .jpeg .jpg "
    b".lz .lz4 .lzma .m4a .m4v .mkv .mov .mp3 .mp4 .mpg .odp .ods .odt .ogg .opus .png .pptx .rar "
    b".tbz .tbz2 .tgz .txz .webm .webp .whl .wmv .woff .woff2 .xlsx .xz .zip .zst .tzst".split()
)


def _suffix(path: bytes) -> bytes:
    name = path.rpartition(b"/")[2]
    dot = name.rfind(b".")
    return name[dot:].lower() if dot > 0 else b""


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
    future: concurrent.futures.Future[list[Encoded]] | concurrent.futures.Future[list[SmallOutcome]]
    jobs: list[FileJob]
    batch: bool
    last: bool
    raw: int


# --- the run --------------------------------------------------------------------------------


class Run:
    def __init__(
        self,
        target: Session | RemoteStore,
        base: str,
        generation: int,
        reporter: Reporter,
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
        self.packer = Packer(target, base, generation, pack_size)
        reporter.unstored = self.packer.unstored
        self.done: dict[bytes, Entry] = {}
        self.kept_previous = 0
        self.read_skipped = 0
        self.changed_on_reread = 0
        self.new_bytes = 0
        self.kept_prefix_bytes = 0  # of grown files, kept in their stored chunks
        self.dump_objects: list[str] = []

    def pack_files(
        self, root: Path, jobs: list[FileJob], reclaimed: set[str] | frozenset[str] = frozenset()
    ) -> None:
        """Read, hash, compress and pack `jobs` in order (see the module docstring). Chunks in
        `reclaimed` packs are never kept."""
        workers = max(1, min(4, os.cpu_count() or 2))
        pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="pack-encode")
        inflight: collections.deque[_InFlight] = collections.deque()
        inflight_bytes = 0
        small_file = min(SMALL_FILE, self.chunk_size)
        batch: list[FileJob] = []
        batch_items: list[tuple[bytes, bool]] = []
        batch_bytes = 0
        deferred: collections.deque[FileJob] = collections.deque()  # small files that grew
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
                assert isinstance(result, Encoded)
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
                future = pool.submit(read_small_batch, worker_reader, batch_items, small_file)
                track(_InFlight(future, batch, True, True, batch_bytes))
                batch, batch_items, batch_bytes = [], [], 0

        def read_big(job: FileJob, fd: int, before: os.stat_result) -> None:
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
                future = pool.submit(hash_and_encode, chunk, job.compress, digest, hashed, done, last)
                hashed = done
                track(_InFlight(future, [job], False, last, len(data)))
                if last:
                    self._check_changed(job, fd, before)
                    return
                self.reporter.check_abort()

        def read_big_file(job: FileJob) -> None:
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
        self, job: FileJob, fd: int, before: os.stat_result, reclaimed: set[str] | frozenset[str]
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

    def _check_changed(self, job: FileJob, fd: int, before: os.stat_result) -> None:
        after = os.fstat(fd)
        if after.st_mtime_ns != before.st_mtime_ns or after.st_size != job.size:
            # The recorded mtime is the one before reading, so the next run stores it again.
            self.reporter.log(
                f"{job.entry.display} changed while it was read; stored what was read", "warning"
            )

    def _unreadable(self, job: FileJob, exc: OSError) -> None:
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

    def _assemble_chunk(self, result: Encoded, job: FileJob, last: bool, *, own: bool = False) -> None:
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
        self, results: Sequence[SmallOutcome], jobs: list[FileJob], grown: collections.deque[FileJob]
    ) -> None:
        for job, result in zip(jobs, results, strict=True):
            if isinstance(result, Encoded):
                job.size, job.mode, job.mtime_ns = result.length, result.mode, result.mtime_ns
                self._assemble_chunk(result, job, True)
            elif isinstance(result, OSError):
                self._unreadable(job, result)
            else:
                grown.append(job)  # read again as a big file

    def _finish_job(self, job: FileJob) -> None:
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
