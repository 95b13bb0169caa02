"""Planning an incremental push: which files keep their stored chunks, which are (re)packed,
which old packs are reclaimed.
"""

from __future__ import annotations

import collections
from collections.abc import Collection
from dataclasses import dataclass, field, replace

from .common import CHUNK_SIZE, RECLAIM_LIVE_RATIO, SMALL_PACK_RATIO, SMALL_PACKS_LIMIT
from .manifest import ChunkRef, Entry, Manifest
from .scan import SourceTree


@dataclass(slots=True)
class FileJob:
    entry: Entry  # as scanned
    previous: Entry | None = None  # the stored version: kept when the file cannot be read
    reclaim: bool = False
    chunks: list[ChunkRef] = field(default_factory=list)
    sha256: str = ""
    size: int = 0
    mode: int = 0
    mtime_ns: int = 0
    compress: bool = True


@dataclass
class Plan:
    entries: list[Entry]  # final order (scan order)
    reused: dict[bytes, Entry]
    jobs: list[FileJob]
    reclaimed_packs: set[str]


def plan_incremental(
    tree: SourceTree, previous: Manifest | None, pack_size: int, damaged_packs: Collection[str] = ()
) -> Plan:
    """Which files keep their stored chunks, which are (re)packed, which old packs are reclaimed.

    A file with a chunk in one of `damaged_packs` (an integrity check found the pack missing
    or corrupt) is treated as changed, and its stored version is never reused, even in part:
    the slot is repaired by storing it again.

    Reclaim rule: an old pack whose live bytes fall below RECLAIM_LIVE_RATIO of its size, or,
    once more than SMALL_PACKS_LIMIT packs are smaller than SMALL_PACK_RATIO of the pack size,
    all of those, get their live files re-read from the local source (and checked against the
    recorded sha256) into this generation's packs; the old pack is deleted after the commit.
    Packs holding chunks of files bigger than one chunk are those files' own packs (see
    upload.Packer): a small one is not fragmentation, and does not count towards the small packs.
    """
    old = previous.entry_map() if previous else {}
    reused: dict[bytes, Entry] = {}
    jobs: list[FileJob] = []
    damaged = set(damaged_packs)
    for entry in tree.entries:
        if entry.type != "f":
            continue
        before = old.get(entry.path)
        if before is not None and damaged and any(chunk.pack in damaged for chunk in before.chunks):
            jobs.append(FileJob(entry))
            continue
        if before is not None and before.type == "f" and before.same_metadata(entry):
            # A new owner alone is new metadata, not new content: the chunks stay.
            reused[entry.path] = (
                before if before.same_owner(entry) else replace(before, uid=entry.uid, gid=entry.gid)
            )
        else:
            stored = before if before is not None and before.type == "f" else None
            jobs.append(FileJob(entry, previous=stored))
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
                jobs.append(FileJob(entry, previous=reused.pop(entry.path), reclaim=True))
        order = {entry.path: index for index, entry in enumerate(tree.entries)}
        jobs.sort(key=lambda job: order[job.entry.path])
    return Plan(tree.entries, reused, jobs, reclaimed)
