"""Restoring from native backups: files into a local folder (materialise), database dumps.

Everything read from the destination is untrusted: paths are refused by SafeTree when they
are not plain relative paths, every file is checked against its sha256 before it gets its
real name, every dump against its size and sha256.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import posixpath
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import zstandard

from destinations import names
from destinations.ftp import PermanentError, RemoteStore
from destinations.localfs import SafeFile, SafeTree, UnsafePath, split_relative

from .common import (
    PACKS_DIR,
    BackupAborted,
    NullProgress,
    ObjectCorrupt,
    ProgressSink,
    Session,
    borrow,
    connection_slots,
    display_path,
)
from .manifest import ChunkRef, DatabaseInfo, Entry, Manifest

GAP_BRIDGE = 1024 * 1024  # read through holes up to this size rather than open another transfer
MAX_PARALLEL_DOWNLOADS = 2


# --- restore --------------------------------------------------------------------------------


@dataclass
class MaterialiseResult:
    files: int = 0
    dirs: int = 0
    links: int = 0
    bytes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    transfers: int = 0  # ranged downloads made

    @property
    def restored(self) -> int:
        return self.files + self.dirs + self.links


class _Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


@dataclass(slots=True)
class _FileState:
    entry: Entry
    handle: SafeFile | None = None
    digest: hashlib._Hash | None = None  # None once chunks arrived out of order
    next_index: int = 0
    received: int = 0
    failed: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(slots=True)
class _Piece:
    chunk: ChunkRef
    state: _FileState
    index: int
    file_offset: int


def _select(
    manifest: Manifest, paths: Sequence[str | bytes] | None, result: MaterialiseResult
) -> list[Entry]:
    """Entries to restore, in manifest order, each with a safe path; the rest reported."""
    chosen: list[Entry] = []
    seen: set[bytes] = set()
    wanted: list[bytes] | None = None
    matched: set[bytes] = set()
    if paths is not None:
        wanted = [(names.to_bytes(p) if isinstance(p, str) else p).strip(b"/") for p in paths]
    for entry in manifest.entries:
        try:
            split_relative(entry.path)
        except UnsafePath as exc:
            result.skipped.append((entry.display, f"refused: {exc}"))
            continue
        if wanted is not None:
            hits = [w for w in wanted if not w or entry.path == w or entry.path.startswith(w + b"/")]
            if not hits:
                continue
            matched.update(hits)
        if entry.path in seen:
            result.skipped.append((entry.display, "refused: listed twice in the manifest"))
            continue
        seen.add(entry.path)
        chosen.append(entry)
    for want in wanted or []:
        if want not in matched:
            result.skipped.append((display_path(want), "not in this backup"))
    return chosen


def _runs(pieces: list[_Piece]) -> list[tuple[int, int, list[_Piece]]]:
    """Coalesce pieces of one pack into (offset, length, pieces) ranged reads."""
    pieces.sort(key=lambda piece: (piece.chunk.offset, piece.chunk.stored))
    runs: list[tuple[int, int, list[_Piece]]] = []
    for piece in pieces:
        start, end = piece.chunk.offset, piece.chunk.offset + piece.chunk.stored
        if runs and start <= runs[-1][0] + runs[-1][1] + GAP_BRIDGE:
            run_start, run_len, members = runs[-1]
            runs[-1] = (run_start, max(run_len, end - run_start), members)
            members.append(piece)
        else:
            runs.append((start, end - start, [piece]))
    return runs


_local = threading.local()


def _decompressor() -> zstandard.ZstdDecompressor:
    dctx = getattr(_local, "dctx", None)
    if dctx is None:
        dctx = _local.dctx = zstandard.ZstdDecompressor()
    return dctx


def decode_chunk(chunk: ChunkRef, stored: bytes) -> bytes:
    """The bytes of `chunk` from its `stored` bytes; ObjectCorrupt when they do not decode to
    its recorded length."""
    try:
        data = (
            _decompressor().decompress(stored, max_output_size=chunk.length)
            if chunk.codec == "zstd"
            else stored
        )
    except zstandard.ZstdError as exc:
        raise ObjectCorrupt(f"damaged chunk in {chunk.pack}: {exc}") from exc
    if len(data) != chunk.length:
        raise ObjectCorrupt(f"chunk in {chunk.pack} holds {len(data)} bytes, not {chunk.length}")
    return data


class _Restorer:
    """Writes chunks into files. `piece` may run in several download threads at once: the
    SafeTree and the result go under `lock`, a file's own progress under its state's lock;
    only the calling thread talks to the ProgressSink (`tick`)."""

    def __init__(
        self,
        tree: SafeTree,
        progress: ProgressSink,
        result: MaterialiseResult,
        overwrite: bool,
        owner_of: Callable[[Entry], tuple[int, int]] | None = None,
    ) -> None:
        self.tree = tree
        self.owner_of = owner_of
        self.progress = progress
        self.result = result
        self.overwrite = overwrite
        self.lock = threading.Lock()
        self.abort = threading.Event()
        self.bytes_done = 0
        self.bytes_total = 0
        self.files_total = 0
        self._last = 0.0

    def tick(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= 0.5:
            self._last = now
            if self.progress.abort_requested():
                self.abort.set()
                raise BackupAborted("the restore was aborted on request")
            self.progress.progress(
                bytes_done=self.bytes_done,
                bytes_total=self.bytes_total,
                files_done=self.result.files,
                files_total=self.files_total,
            )

    def skip(self, entry: Entry, reason: str) -> None:
        with self.lock:
            self.result.skipped.append((entry.display, reason))

    def open(self, state: _FileState) -> bool:
        try:
            with self.lock:
                state.handle = self.tree.open_file(state.entry.path, overwrite=self.overwrite)
        except FileExistsError:
            state.failed = "exists (not overwritten)"
        except (UnsafePath, OSError) as exc:
            state.failed = f"cannot write: {exc}"
        if state.failed:
            self.skip(state.entry, state.failed)
            return False
        return True

    def piece(self, piece: _Piece, stored: bytes) -> None:
        if self.abort.is_set():
            raise BackupAborted("the restore was aborted on request")
        state = piece.state
        chunk = piece.chunk
        if state.failed:
            return
        try:
            data = decode_chunk(chunk, stored)
        except ObjectCorrupt as exc:
            with state.lock:
                if not state.failed:
                    self.fail(state, str(exc))
            return
        with state.lock:
            if state.failed:
                return
            if state.handle is None and not self.open(state):
                return
            assert state.handle is not None
            state.handle.pwrite(data, piece.file_offset)
            if state.digest is not None:
                if piece.index == state.next_index:
                    state.digest.update(data)
                    state.next_index += 1
                else:
                    state.digest = None  # out of order: hash the written file at the end
            state.received += 1
            if state.received == len(state.entry.chunks):
                self.complete(state)
        with self.lock:
            self.bytes_done += len(data)

    def fail(self, state: _FileState, reason: str) -> None:
        """Mark a file failed and drop what was written (caller holds the state's lock)."""
        state.failed = reason
        if state.handle is not None:
            with self.lock:
                self.tree.discard(state.handle)
            state.handle = None
        self.skip(state.entry, reason)

    def complete(self, state: _FileState) -> None:
        """Verify and rename a file into place (caller holds the state's lock)."""
        entry = state.entry
        if state.handle is None and not self.open(state):
            return
        assert state.handle is not None
        if state.digest is None:
            digest = hashlib.sha256()
            offset = 0
            while offset < entry.size:
                block = os.pread(state.handle.fd, 1024 * 1024, offset)
                if not block:
                    break
                digest.update(block)
                offset += len(block)
        else:
            digest = state.digest
        if digest.hexdigest() != entry.sha256:
            self.fail(state, "sha256 mismatch: the stored data is damaged")
            return
        handle, state.handle = state.handle, None
        try:
            with self.lock:
                self.tree.finish_file(
                    handle,
                    mode=entry.mode,
                    mtime_ns=entry.mtime_ns,
                    overwrite=self.overwrite,
                    owner=self.owner_of(entry) if self.owner_of else None,
                )
        except FileExistsError:
            self.skip(entry, "exists (not overwritten)")
            return
        except (UnsafePath, OSError) as exc:
            self.skip(entry, f"cannot write: {exc}")
            return
        with self.lock:
            self.result.files += 1
            self.result.bytes += entry.size

    def discard_all(self, states: Sequence[_FileState]) -> None:
        for state in states:
            with state.lock:
                if state.handle is not None:
                    with self.lock:
                        self.tree.discard(state.handle)
                    state.handle = None

    def fetch_pack(self, source: Session | RemoteStore, path: str, pieces: list[_Piece]) -> int:
        """All runs of one pack over one borrowed connection; returns the transfers made."""
        transfers = 0
        with borrow(source) as store:
            for start, length, members in _runs(pieces):
                if self.abort.is_set():
                    raise BackupAborted("the restore was aborted on request")
                transfers += 1
                try:
                    _fetch_run(store, path, start, length, members, self)
                except (PermanentError, ObjectCorrupt) as exc:  # missing, unreadable or cut short
                    for piece in members:  # skip its files (those not already whole)
                        with piece.state.lock:
                            if not piece.state.failed and piece.state.received < len(
                                piece.state.entry.chunks
                            ):
                                self.fail(piece.state, f"cannot read {posixpath.basename(path)}: {exc}")
        return transfers


def _fetch_run(
    store: RemoteStore, path: str, start: int, length: int, pieces: list[_Piece], restorer: _Restorer
) -> None:
    """One ranged RETR; cut the chunks out of the stream as they arrive.

    A transfer that ends early is resumed from the first missing byte (a few times).
    """
    buffer = bytearray()
    buffer_start = start
    end = start + length
    index = 0
    for _attempt in range(3):
        position = buffer_start + len(buffer)
        for block in store.download(path, offset=position, length=end - position):
            buffer += block
            while index < len(pieces):
                chunk = pieces[index].chunk
                chunk_end = chunk.offset + chunk.stored
                if buffer_start + len(buffer) < chunk_end:
                    break
                begin = chunk.offset - buffer_start
                restorer.piece(pieces[index], bytes(memoryview(buffer)[begin : begin + chunk.stored]))
                index += 1
                # Keep bytes a later (overlapping) piece may still need.
                keep_from = chunk_end if index >= len(pieces) else min(chunk_end, pieces[index].chunk.offset)
                drop = keep_from - buffer_start
                if drop > 0:
                    del buffer[:drop]
                    buffer_start = keep_from
        if index >= len(pieces):
            return
    raise ObjectCorrupt(f"{path}: the server sent fewer bytes than the manifest says it holds")


def materialise(
    source: Session | RemoteStore,
    backup_path: str,
    manifest: Manifest,
    dest: Path,
    *,
    paths: Sequence[str | bytes] | None = None,
    progress: ProgressSink | None = None,
    owner: tuple[int, int] | None = None,
    owner_of: Callable[[Entry], tuple[int, int]] | None = None,
    overwrite: bool = False,
) -> MaterialiseResult:
    """Restore the backup, or the chosen paths (a folder selects its subtree), into `dest`.

    Reads only the bytes needed: the chunks of the chosen files, coalesced per pack into
    ranged downloads (one per contiguous run), so a full restore reads each pack once.
    Symlinks are created as links (never followed); setuid/setgid bits are dropped;
    folders get their mode and mtime after their content. Entries whose path is absolute or
    holds '..' are refused and reported in `skipped`.

    `owner`: the (uid, gid) of folders the restore creates and, without `owner_of`, of
    everything; `owner_of(entry)`: each entry's (uid, gid) (see ownership.Owners). Nothing is
    chowned without `owner`.
    """
    sink = progress or NullProgress()
    result = MaterialiseResult()
    entries = _select(manifest, paths, result)
    # A folder's parents come before it in the manifest; sort anyway (a hostile order).
    dirs = sorted((e for e in entries if e.type == "d"), key=lambda e: e.path.count(b"/"))
    files = [e for e in entries if e.type == "f"]
    links = [e for e in entries if e.type == "l"]
    with SafeTree(dest, owner=owner) as tree:
        made_dirs = []
        for entry in dirs:
            try:
                tree.mkdir(entry.path, 0o700, replace=overwrite, owner=owner_of(entry) if owner_of else None)
                made_dirs.append(entry)
            except (UnsafePath, OSError) as exc:
                result.skipped.append((entry.display, f"cannot create folder: {exc}"))
        restorer = _Restorer(tree, sink, result, overwrite, owner_of)
        states = [_FileState(entry, digest=hashlib.sha256()) for entry in files]
        by_pack: dict[str, list[_Piece]] = defaultdict(list)
        for state in states:
            offset = 0
            for index, chunk in enumerate(state.entry.chunks):
                by_pack[chunk.pack].append(_Piece(chunk, state, index, offset))
                offset += chunk.length
            restorer.bytes_total += state.entry.size
            if not state.entry.chunks:
                restorer.complete(state)  # empty file
        restorer.files_total = len(states)
        # One thread per pack over the session's connections: download, TLS, zstd, sha256 and
        # pwrite all release the GIL. A bare store is used from this thread only.
        workers = connection_slots(source, MAX_PARALLEL_DOWNLOADS) if len(by_pack) > 1 else 1
        pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="restore")
        try:
            if workers == 1:
                for pack in sorted(by_pack):
                    restorer.tick()
                    path = f"{backup_path}/{PACKS_DIR}/{pack}"
                    result.transfers += restorer.fetch_pack(source, path, by_pack[pack])
            else:
                futures = [
                    pool.submit(
                        restorer.fetch_pack, source, f"{backup_path}/{PACKS_DIR}/{pack}", by_pack[pack]
                    )
                    for pack in sorted(by_pack)
                ]
                pending = set(futures)
                while pending:
                    done, pending = concurrent.futures.wait(
                        pending, timeout=0.5, return_when=concurrent.futures.FIRST_EXCEPTION
                    )
                    for future in done:
                        result.transfers += future.result()
                    restorer.tick()
        except BaseException:
            restorer.abort.set()
            pool.shutdown(wait=True, cancel_futures=True)
            restorer.discard_all(states)
            raise
        pool.shutdown()
        for state in states:
            if state.handle is not None:  # chunks missing (cannot happen with a valid manifest)
                restorer.fail(state, "incomplete")
        for entry in links:
            assert entry.link is not None
            try:
                tree.symlink(
                    entry.path,
                    entry.link,
                    mtime_ns=entry.mtime_ns,
                    overwrite=overwrite,
                    owner=owner_of(entry) if owner_of else None,
                )
                result.links += 1
            except FileExistsError:
                result.skipped.append((entry.display, "exists (not overwritten)"))
            except (UnsafePath, OSError) as exc:
                result.skipped.append((entry.display, f"cannot create link: {exc}"))
        for entry in sorted(made_dirs, key=lambda e: e.path.count(b"/"), reverse=True):
            try:
                tree.finish_dir(
                    entry.path, entry.mode, entry.mtime_ns, owner=owner_of(entry) if owner_of else None
                )
                result.dirs += 1
            except (UnsafePath, OSError) as exc:
                result.skipped.append((entry.display, f"cannot set folder mode/time: {exc}"))
    sink.progress(
        bytes_done=restorer.bytes_done,
        bytes_total=restorer.bytes_total,
        files_done=result.files,
        files_total=len(files),
    )
    return result


def download_dump(
    source: Session | RemoteStore, backup_path: str, manifest: Manifest, database: str, out: _Writable
) -> DatabaseInfo:
    """Stream a database dump back, decompressed, into `out`; verifies size and sha256.

    On ObjectCorrupt, `out` has already received (some of) the bytes: discard them.
    """
    info = next((db for db in manifest.databases if db.name == database), None)
    if info is None:
        raise KeyError(f"database {database!r} is not in this backup")
    path = posixpath.join(backup_path, info.object)
    digest = hashlib.sha256()
    size = stored = 0
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    with borrow(source) as store:
        for block in store.download(path):
            stored += len(block)
            data = decompressor.decompress(block)
            if data:
                digest.update(data)
                size += len(data)
                out.write(data)
    if stored != info.stored or size != info.size or digest.hexdigest() != info.sha256:
        raise ObjectCorrupt(f"{path}: the dump read back does not match the manifest (size or sha256)")
    return info


__all__ = [
    "MaterialiseResult",
    "decode_chunk",
    "download_dump",
    "materialise",
]
