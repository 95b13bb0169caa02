"""The slot a backup is written into: checking it, removing leftovers, and the format file.

Nothing here depends on a listing being complete (pure-ftpd cuts listings at 2,000 entries):
a failed run's packs are found by probing their names, garbage is deleted by name.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence

from destinations.ftp import FtpError, RemoteStore

from .common import (
    DB_DIR,
    DUMP_RE,
    FORMAT_FILE,
    MANIFEST_RE,
    MANIFEST_TMP_RE,
    MAX_PARALLEL_UPLOADS,
    PACK_RE,
    PACKS_DIR,
    ManifestCorrupt,
    ManifestMissing,
    SlotConflict,
    pack_name,
)
from .format_text import FORMAT_TEXT
from .manifest import Manifest
from .read import read_manifest
from .reporter import Reporter


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


def remove_objects(conn: RemoteStore, base: str, objects: Sequence[str], reporter: Reporter | None) -> int:
    removed = 0
    for rel in sorted(objects, key=_manifest_first):
        try:
            conn.remove(f"{base}/{rel}")
            removed += 1
        except FtpError as exc:
            if conn.stat(f"{base}/{rel}") is not None and reporter is not None:
                reporter.log(f"could not delete {base}/{rel}: {exc}", "warning")
    return removed


def sweep(conn: RemoteStore, base: str, keep: set[str], reporter: Reporter | None = None) -> int:
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


def prepare_slot(
    conn: RemoteStore, base: str, previous: Manifest | None, reporter: Reporter
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
