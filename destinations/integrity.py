"""Integrity check of what lies on a destination: is every backup still there, and intact?

Presence and sizes come from listings only: one listing per native backup folder and one of
its `packs/` and `db/` sub-folders, one per folder of cPanel archives. A listing is never
taken as proof that something is absent (pure-ftpd cuts listings at 2,000 entries): an object
a listing does not show is asked for with SIZE before it is reported missing, so a healthy
backup costs its listings and a cut one one SIZE per object beyond the cut.

Contents are sampled. A chunk on its own has no hash (the manifest keeps the whole file's
sha256), so the unit of sampling is a whole file: all its chunks are read with ranged
downloads, each is decoded (a zstd chunk's frame checksum is checked on the way) and the
file's sha256 compared with the manifest's. A dump is read to the end and checked against its
recorded stored size, size and sha256. Which files and dumps are read: each one falls into one
of 100 buckets by a keyed hash of its identity; a run reads the buckets
`[cursor, cursor + read_percent)` (mod 100) and the caller advances the cursor, so runs differ,
spread over every pack, and 100 / read_percent runs cover every stored byte. `read_percent`
100 reads every referenced byte once; 0 reads none.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import posixpath
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain

from .formats import cpanel
from .formats.cpanel.tarsafe import IterStream
from .formats.native.common import (
    ACCOUNT_RE,
    BACKUP_ID_RE,
    DB_DIR,
    LOCK_FILE,
    MANIFEST_RE,
    PACKS_DIR,
    ManifestCorrupt,
    ManifestMissing,
    ObjectCorrupt,
)
from .formats.native.manifest import ChunkRef, Entry, Manifest
from .formats.native.read import read_manifest
from .formats.native.restore import decode_chunk, download_dump
from .ftp import PermanentError, RemoteEntry, RemoteStore

logger = logging.getLogger(__name__)

BUCKETS = 100
MAX_RUN = 16 * 1024 * 1024  # one ranged download reads at most this much
ROOT_FILES = {"BACKUPSITE-FORMAT.txt"}
# A damaged backup lists at most this many problems (a pack holding 10,000 files is one
# problem, not 10,000).
MAX_PROBLEMS = 200


@dataclass
class Sample:
    """Which buckets this run reads: `[cursor, cursor + percent)` mod 100, keyed by `salt`."""

    percent: int
    cursor: int = 0
    salt: bytes = b""

    def picks(self, identity: str) -> bool:
        if self.percent <= 0:
            return False
        if self.percent >= BUCKETS:
            return True
        digest = hmac.new(self.salt, identity.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()
        bucket = int.from_bytes(digest[:4], "big") % BUCKETS
        return (bucket - self.cursor) % BUCKETS < self.percent


@dataclass
class BackupResult:
    """What the check found in one backup (a native folder or a cPanel archive)."""

    path: str
    problems: list[dict[str, str]] = field(default_factory=list)
    bytes_read: int = 0
    files_read: int = 0
    damaged_packs: set[str] = field(default_factory=set)

    def problem(self, path: str, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append({"path": path, "problem": problem})

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class CpanelArchive:
    """A cPanel archive as the index knows it."""

    path: str
    pieces: Sequence[str]
    size: int | None
    mtime: datetime | None


Tick = Callable[[int], None]  # bytes read so far in this backup


def _listing(store: RemoteStore, path: str) -> dict[str, RemoteEntry] | None:
    try:
        return {entry.name: entry for entry in store.listdir(path)}
    except PermanentError:
        return None


def _present_size(
    store: RemoteStore, listed: dict[str, RemoteEntry] | None, folder: str, name: str
) -> int | None:
    """The object's size from the folder's listing; an object the listing does not show (a
    listing cut at 2,000 entries, or none at all) is asked for with SIZE. None: absent."""
    entry = (listed or {}).get(name)
    if entry is not None and entry.type == "file" and entry.size is not None:
        return entry.size
    try:
        return store.size(f"{folder}/{name}")
    except PermanentError:
        return None


# --- native ---------------------------------------------------------------------------------


def check_native_backup(
    store: RemoteStore,
    path: str,
    sample: Sample,
    tick: Tick | None = None,
    *,
    cached: Manifest | None = None,
) -> BackupResult:
    """Presence, sizes and a sample of contents of one native backup folder `path`.

    `cached`: the panel's copy of the backup's manifest. It stands in for the destination's
    when the newest manifest there has its generation and size, unless the sample picks the
    manifest: then (and always with read_percent 100) the destination's is downloaded and
    decoded.
    """
    result = BackupResult(path)
    top = _listing(store, path)
    if top is None:
        result.problem(path, "the backup folder is missing")
        return result
    try:
        newest = newest_manifest(top.values())
        use_cached = cached if newest is None or not sample.picks(f"{path}/{newest}") else None
        manifest = read_manifest(store, path, listing=list(top.values()), cached=use_cached)
    except (ManifestMissing, ManifestCorrupt, ObjectCorrupt) as exc:
        result.problem(path, f"no manifest decodes: {exc}")
        return result
    packs_listed = _listing(store, f"{path}/{PACKS_DIR}") if manifest.packs else {}
    db_listed = _listing(store, f"{path}/{DB_DIR}") if manifest.databases else {}
    present: dict[str, bool] = {}
    for pack in manifest.packs:
        rel = f"{PACKS_DIR}/{pack.name}"
        size = _present_size(store, packs_listed, f"{path}/{PACKS_DIR}", pack.name)
        if size is None:
            result.problem(f"{path}/{rel}", "missing")
            result.damaged_packs.add(pack.name)
        elif size != pack.size:
            result.problem(f"{path}/{rel}", f"{size} bytes, the manifest says {pack.size}")
            result.damaged_packs.add(pack.name)
        present[pack.name] = size is not None and size == pack.size
    intact_dumps = set()
    for db in manifest.databases:
        folder, name = posixpath.split(f"{path}/{db.object}")
        size = _present_size(store, db_listed, folder, name)
        if size is None:
            result.problem(f"{path}/{db.object}", "missing")
        elif size != db.stored:
            result.problem(f"{path}/{db.object}", f"{size} bytes, the manifest says {db.stored}")
        else:
            intact_dumps.add(db.object)
    for name in sorted(_orphans(manifest, top, packs_listed, db_listed)):
        result.problem(f"{path}/{name}", "orphan: no manifest refers to it (kept)")
    _sample_files(store, path, manifest, sample, present, result, tick)
    for db in manifest.databases:
        if db.object not in intact_dumps or not sample.picks(f"{path}/{db.object}"):
            continue
        try:
            download_dump(store, path, manifest, db.name, _Discard())
        except ObjectCorrupt:
            result.problem(
                f"{path}/{db.object}", "does not decode to the size and sha256 the manifest records"
            )
        except PermanentError as exc:
            result.problem(f"{path}/{db.object}", f"could not be read: {exc.message}")
        result.bytes_read += db.stored
        result.files_read += 1
        if tick:
            tick(result.bytes_read)
    return result


def _orphans(
    manifest: Manifest,
    top: dict[str, RemoteEntry],
    packs: dict[str, RemoteEntry] | None,
    dbs: dict[str, RemoteEntry] | None,
) -> set[str]:
    needed = manifest.referenced_objects()
    found = {name for name, entry in top.items() if entry.type == "file" and name != LOCK_FILE}
    found.update(f"{PACKS_DIR}/{name}" for name, e in (packs or {}).items() if e.type == "file")
    found.update(f"{DB_DIR}/{name}" for name, e in (dbs or {}).items() if e.type == "file")
    return found - needed


class _Discard:
    def write(self, data: bytes, /) -> int:
        return len(data)


def _sample_files(
    store: RemoteStore,
    path: str,
    manifest: Manifest,
    sample: Sample,
    present: dict[str, bool],
    result: BackupResult,
    tick: Tick | None,
) -> None:
    """Read the sampled files' chunks, pack by pack in offset order (adjacent chunks in one
    ranged download), and check each file's sha256 once all its chunks have been read."""
    chosen: list[Entry] = []
    seen_chunks: set[tuple[str, int]] = set()
    for entry in manifest.entries:
        if entry.type != "f" or not entry.chunks or not sample.picks(f"{path}:{entry.sha256}:{entry.size}"):
            continue
        if any(not present.get(chunk.pack, False) for chunk in entry.chunks):
            continue  # already reported with its pack
        key = (entry.chunks[0].pack, entry.chunks[0].offset)
        if key in seen_chunks:
            continue  # another entry with the same chunks (a hard link's twin) was chosen
        seen_chunks.add(key)
        chosen.append(entry)
    if not chosen:
        return
    # Each file is hashed as its chunks arrive in file order; a chunk that arrives early waits
    # in `early`. A big file's chunks fill packs of their own in file order and packs are read
    # in name order, so chunks arrive in order and memory stays at one download.
    digests = {number: hashlib.sha256() for number in range(len(chosen))}
    next_index = dict.fromkeys(range(len(chosen)), 0)
    early: dict[tuple[int, int], bytes] = {}
    by_pack: dict[str, list[tuple[ChunkRef, int, int]]] = defaultdict(list)
    for number, entry in enumerate(chosen):
        for index, chunk in enumerate(entry.chunks):
            by_pack[chunk.pack].append((chunk, number, index))
    failed: set[int] = set()

    def drop(number: int) -> None:
        """The file cannot be checked (reported once, where it failed): keep none of it."""
        failed.add(number)
        for waiting in [waiting for waiting in early if waiting[0] == number]:
            del early[waiting]

    def arrive(number: int, index: int, data: bytes) -> None:
        early[(number, index)] = data
        entry = chosen[number]
        while (number, next_index[number]) in early:
            digests[number].update(early.pop((number, next_index[number])))
            next_index[number] += 1
        if next_index[number] < len(entry.chunks):
            return
        if digests.pop(number).hexdigest() != entry.sha256:
            result.problem(
                f"{path}/{PACKS_DIR}/{entry.chunks[0].pack}",
                f"{entry.display}: the content's sha256 does not match",
            )
            result.damaged_packs.update(chunk.pack for chunk in entry.chunks)
        result.files_read += 1

    # Pack names sort by generation and number, which is a big file's chunk order: its decoded
    # chunks are released as soon as the file is whole.
    for pack in sorted(by_pack):
        refs = sorted(by_pack[pack], key=lambda ref: ref[0].offset)
        for run in _runs(refs):
            start = run[0][0].offset
            end = run[-1][0].offset + run[-1][0].stored
            try:
                data = b"".join(
                    store.download(f"{path}/{PACKS_DIR}/{pack}", offset=start, length=end - start)
                )
            except PermanentError as exc:
                result.problem(f"{path}/{PACKS_DIR}/{pack}", f"could not be read: {exc.message}")
                result.damaged_packs.add(pack)
                for _, number, _ in run:
                    drop(number)
                continue
            result.bytes_read += end - start
            if tick:
                tick(result.bytes_read)
            for chunk, number, index in run:
                stored = data[chunk.offset - start : chunk.offset - start + chunk.stored]
                if number in failed:
                    continue
                try:
                    if len(stored) != chunk.stored:
                        raise ObjectCorrupt(f"the pack ends before the chunk at {chunk.offset}")
                    decoded = decode_chunk(chunk, stored)
                except ObjectCorrupt as exc:
                    drop(number)
                    result.problem(f"{path}/{PACKS_DIR}/{pack}", f"{chosen[number].display}: {exc}")
                    result.damaged_packs.add(pack)
                    continue
                arrive(number, index, decoded)


def _runs(refs: list[tuple[ChunkRef, int, int]]) -> Iterator[list[tuple[ChunkRef, int, int]]]:
    """Adjacent chunks (no gap, shared ones once) in one run of at most MAX_RUN bytes."""
    run: list[tuple[ChunkRef, int, int]] = []
    end = 0
    for ref in refs:
        chunk = ref[0]
        if run and (chunk.offset > end or chunk.offset + chunk.stored - run[0][0].offset > MAX_RUN):
            yield run
            run = []
        if not run:
            end = chunk.offset
        run.append(ref)
        end = max(end, chunk.offset + chunk.stored)
    if run:
        yield run


def unknown_folders(store: RemoteStore, known: set[str]) -> list[dict[str, str]]:
    """Backup folders (and other files) on the destination that no indexed backup is: orphans,
    reported and kept. Costs one listing of the root and one per account folder."""
    found: list[dict[str, str]] = []
    try:
        root = store.listdir("")
    except PermanentError:
        return found
    for entry in sorted(root, key=lambda e: e.name):
        if (entry.type == "file" and entry.name in ROOT_FILES) or entry.name.startswith("."):
            continue  # ours, or the server's own (.ftpquota)
        if entry.type != "dir" or not ACCOUNT_RE.match(entry.name):
            found.append({"path": entry.name, "problem": "orphan: not a backup (kept)"})
            continue
        try:
            folders = store.listdir(entry.name)
        except PermanentError:
            continue
        for folder in sorted(folders, key=lambda e: e.name):
            rel = f"{entry.name}/{folder.name}"
            if folder.type == "dir" and BACKUP_ID_RE.match(folder.name) and rel in known:
                continue
            found.append({"path": rel, "problem": "orphan: no indexed backup (kept)"})
    return found


def newest_manifest(listing: Iterable[RemoteEntry]) -> str | None:
    names = sorted(e.name for e in listing if e.type == "file" and MANIFEST_RE.match(e.name))
    return names[-1] if names else None


# --- cPanel ---------------------------------------------------------------------------------


def check_cpanel_archives(
    store: RemoteStore, archives: Sequence[CpanelArchive], sample: Sample, tick: Tick | None = None
) -> list[BackupResult]:
    """Every archive present with its indexed size and time (one listing per folder), and the
    sampled ones read to the end: gzip CRC and tar structure, with the hostile-archive reader."""
    folders: dict[str, dict[str, RemoteEntry] | None] = {}
    results = []
    for archive in archives:
        result = BackupResult(archive.path)
        total = 0
        newest: datetime | None = None
        for piece in archive.pieces:
            folder, name = posixpath.split(piece)
            if folder not in folders:
                folders[folder] = _listing(store, folder)
            entry = (folders[folder] or {}).get(name)
            if entry is None or entry.size is None:
                try:
                    size = store.size(piece)
                except PermanentError:
                    size = None
                if size is None:
                    result.problem(piece, "missing")
                    continue
                entry = RemoteEntry(name=name, type="file", size=size)
            total += entry.size or 0
            if entry.mtime is not None and (newest is None or entry.mtime > newest):
                newest = entry.mtime
        if result.ok and newest is not None and archive.mtime is not None and _moved(newest, archive.mtime):
            result.problem(
                archive.path,
                f"modified {newest:%Y-%m-%d %H:%M}, the index says {archive.mtime:%Y-%m-%d %H:%M}",
            )
        if result.ok and archive.size is not None and total != archive.size:
            result.problem(archive.path, f"{total} bytes, the index says {archive.size}")
        if result.ok and sample.picks(archive.path):
            _read_cpanel(store, archive, result, tick)
        results.append(result)
    return results


def _moved(listed: datetime, indexed: datetime) -> bool:
    """A listing shows minutes at best (LIST) or seconds (MLSD): a minute apart is a change."""
    return abs((listed - indexed).total_seconds()) >= 60


def _read_cpanel(store: RemoteStore, archive: CpanelArchive, result: BackupResult, tick: Tick | None) -> None:
    def counted(blocks: Iterator[bytes]) -> Iterator[bytes]:
        for block in blocks:
            result.bytes_read += len(block)
            if tick:
                tick(result.bytes_read)
            yield block

    try:
        stream = IterStream(counted(chain.from_iterable(store.download(piece) for piece in archive.pieces)))
        index = cpanel.read_archive(stream, account_hint=None)
    except (PermanentError, ObjectCorrupt) as exc:
        result.problem(archive.path, f"could not be read: {exc}")
        return
    result.files_read += 1
    if not index.complete:
        reasons = "; ".join(f"{p.member}: {p.reason}" if p.member else p.reason for p in index.problems[:5])
        result.problem(
            archive.path, f"does not read to the end ({reasons or ', '.join(sorted(index.flags))})"
        )


__all__ = [
    "BackupResult",
    "CpanelArchive",
    "Sample",
    "check_cpanel_archives",
    "check_native_backup",
    "unknown_folders",
]
