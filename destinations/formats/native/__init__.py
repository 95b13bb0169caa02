"""Backupsite's native backup format on an FTP destination.

This package's __init__ is the format's public API: callers import from here; the modules
below are its parts.

Format (format_text.FORMAT_TEXT is the same, as a future reader sees it):
- Small files are packed into pack files of up to PACK_SIZE (16 MiB), so a backup of 20,000
  files costs tens of FTP transfers. Files over CHUNK_SIZE (8 MiB) are split into 8 MiB chunks
  that may sit in different packs. A chunk reference is [pack, offset, stored, codec, length]:
  `length` (the raw size) was added to the lead's draft so any byte range of a file can be
  found, and chunk sizes can change later without breaking old generations.
- Each chunk is one zstd frame (level 3, with content size and checksum) or raw bytes: raw for
  known compressed formats (by suffix), for big chunks whose 2 x 64 KiB level-1 probe saves
  under 5 %, and whenever zstd saves under 5 %. Database dumps are always streamed through zstd.
- A backup becomes real only when its manifest is committed: uploaded as .tmp, verified by
  size, renamed into place, last. Garbage is deleted only after that, by name (pure-ftpd cuts
  listings at 2,000 entries, so nothing that matters depends on a listing).
- An incremental slot is updated in place: unchanged files (same type, size, mtime_ns, mode,
  link target) keep their chunk references; new and changed files go to new packs. Reclaim:
  an old pack whose live bytes fall below 50 % of its size (or, once more than 16 packs are
  under 4 MiB, all those small packs) has its live files re-read from the local source, checked
  against the recorded sha256 (a mismatch means the content changed without a new mtime: the
  new content is stored and logged), packed into the new generation, and the old pack is
  deleted after the commit. No download is needed.

Resources: no local temporary files. Pack buffers (MAX_PARALLEL_UPLOADS + 1 = 3 x 16 MiB) and
three 8 MiB read buffers are allocated once per run and reused; with a 16 MiB in-flight window
the engine peaks around 165 MB RSS on a 1 GB / 20,000-file tree (interpreter included).

Threads: the calling thread scans, reads and packs; worker threads hash and compress; up to
MAX_PARALLEL_UPLOADS threads upload packs, each on a connection borrowed from the session.
The ProgressSink is only ever called from the calling thread (a Django-backed sink is safe).

The jobs layer must guarantee one writer per slot at a time (a run and a concurrent run or
deletion of the same backup would delete each other's objects); write_backup refuses a slot
whose generation is not the one it was told (SlotConflict), but that is no lock.

Modules: common (limits, errors, protocols), manifest (the manifest's dataclasses),
manifest_codec (its encoder and strict decoder), scan (walking and opening the source),
format_text (the text written to destinations); writing a backup: write (the entry point),
slot (checking the slot, leftovers), plan (what an incremental push stores), packing (reading
and packing the files), encode (hashing and compressing chunks), upload (packs, dumps, the
commit), reporter (progress); reading: read (manifests, listing, locking, deleting), restore
(materialise, dumps). destinations.localfs (SafeTree) writes a restore without
following symlinks.
"""

from .common import (
    CHUNK_SIZE,
    PACK_SIZE,
    BackupAborted,
    DumpFailed,
    DumpSource,
    ManifestCorrupt,
    ManifestMissing,
    NativeError,
    NullProgress,
    ObjectCorrupt,
    ProgressCounts,
    ProgressSink,
    Session,
    SlotConflict,
    UploadNotVerified,
    backup_path,
    new_backup_id,
)
from .format_text import FORMAT_TEXT
from .manifest import ChunkRef, DatabaseInfo, Entry, Manifest, PackInfo, Part
from .read import BackupListing, backup_folders, delete_backup, list_backups, read_manifest, set_locked
from .restore import MaterialiseResult, download_dump, materialise
from .scan import Skipped, SourceTree, scan_source
from .write import write_backup

__all__ = [
    "CHUNK_SIZE",
    "FORMAT_TEXT",
    "PACK_SIZE",
    "BackupAborted",
    "BackupListing",
    "ChunkRef",
    "DatabaseInfo",
    "DumpFailed",
    "DumpSource",
    "Entry",
    "Manifest",
    "ManifestCorrupt",
    "ManifestMissing",
    "MaterialiseResult",
    "NativeError",
    "NullProgress",
    "ObjectCorrupt",
    "PackInfo",
    "Part",
    "ProgressCounts",
    "ProgressSink",
    "Session",
    "Skipped",
    "SlotConflict",
    "SourceTree",
    "UploadNotVerified",
    "backup_folders",
    "backup_path",
    "delete_backup",
    "download_dump",
    "list_backups",
    "materialise",
    "new_backup_id",
    "read_manifest",
    "scan_source",
    "set_locked",
    "write_backup",
]
