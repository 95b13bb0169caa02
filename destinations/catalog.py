"""The index of what lies on destinations: recording backups (Snapshot rows, their parts and
file listings) as engines write or read them, and forgetting them."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from . import listing
from .engines import native
from .engines.native_common import manifest_name
from .engines.native_manifest import decode_manifest, encode_manifest
from .models import Snapshot

_TYPES = {"f": "file", "d": "dir", "l": "symlink"}


def native_entries(manifest: native.Manifest) -> Iterator[listing.Entry]:
    for entry in manifest.entries:
        yield listing.Entry(
            path=os.fsdecode(entry.path),
            type=_TYPES.get(entry.type, entry.type),
            size=entry.size,
            mtime=entry.mtime_ns // 1_000_000_000,
            mode=stat.S_IMODE(entry.mode),
            target=os.fsdecode(entry.link) if entry.link is not None else "",
        )


def stored_size(manifest: native.Manifest) -> int:
    return (
        sum(pack.size for pack in manifest.packs)
        + sum(db.stored for db in manifest.databases)
        + manifest.stored_size
    )


def record_native(snapshot: Snapshot, manifest: native.Manifest, *, locked: bool | None = None) -> Snapshot:
    """Make `snapshot` describe the committed `manifest`: complete and restorable."""
    root = listing.build(native_entries(manifest))
    cache_manifest(snapshot, manifest)
    snapshot.listing_root = root
    snapshot.parts = [{"kind": p.kind, "name": p.name, "size": p.size} for p in manifest.parts]
    snapshot.size = stored_size(manifest)
    snapshot.created = manifest.created
    snapshot.generation = manifest.generation
    snapshot.state = Snapshot.State.COMPLETE
    snapshot.flags = []
    snapshot.problems = []
    snapshot.indexed = timezone.now()
    if locked is not None:
        snapshot.locked = locked
    snapshot.save()
    return snapshot


def forget(snapshot: Snapshot) -> None:
    drop_cached_manifests(snapshot)
    snapshot.delete()


# --- local copies of native manifests ---------------------------------------------------------
# A restore of one file must cost that file's bytes, not the download of a manifest that can
# reach tens of MB for a million files: keep the committed manifest of each backup locally.


def _cache_dir(snapshot: Snapshot) -> Path:
    return Path(settings.DATA_DIR) / "manifests" / str(snapshot.destination_id) / snapshot.path


def cache_manifest(snapshot: Snapshot, manifest: native.Manifest) -> None:
    folder = _cache_dir(snapshot)
    folder.mkdir(parents=True, exist_ok=True)
    data = encode_manifest(manifest)
    tmp = folder / f".{manifest.name}.tmp"
    tmp.write_bytes(data)
    tmp.replace(folder / manifest.name)
    for old in folder.iterdir():
        if old.name != manifest.name:
            old.unlink(missing_ok=True)


def cached_manifest(snapshot: Snapshot) -> native.Manifest | None:
    path = _cache_dir(snapshot) / manifest_name(snapshot.generation)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        account, backup_id = snapshot.path.rsplit("/", 1)
        return decode_manifest(data, account=account, backup_id=backup_id, generation=snapshot.generation)
    except native.NativeError:
        path.unlink(missing_ok=True)
        return None


def drop_cached_manifests(snapshot: Snapshot) -> None:
    shutil.rmtree(_cache_dir(snapshot), ignore_errors=True)
