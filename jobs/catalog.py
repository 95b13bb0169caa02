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

from destinations import listing, names
from destinations.formats import native
from destinations.formats.native.common import manifest_name
from destinations.formats.native.manifest_codec import decode_manifest, encode_manifest
from jobs.models import Snapshot

_TYPES = {"f": "file", "d": "dir", "l": "symlink"}


def _listing_entry(entry: native.Entry) -> listing.Entry:
    return listing.Entry(
        path=names.from_bytes(entry.path),
        type=_TYPES.get(entry.type, entry.type),
        size=entry.size,
        mtime=entry.mtime_ns // 1_000_000_000,
        mode=stat.S_IMODE(entry.mode),
        target=names.from_bytes(entry.link) if entry.link is not None else "",
    )


def native_entries(manifest: native.Manifest) -> Iterator[listing.Entry]:
    for entry in manifest.entries:
        yield _listing_entry(entry)


def stored_size(manifest: native.Manifest) -> int:
    return (
        sum(pack.size for pack in manifest.packs)
        + sum(db.stored for db in manifest.databases)
        + manifest.stored_size
    )


def record_native(
    snapshot: Snapshot,
    manifest: native.Manifest,
    *,
    locked: bool | None = None,
    previous: native.Manifest | None = None,
) -> Snapshot:
    """Make `snapshot` describe the committed `manifest`: complete and restorable.

    `previous`: the generation this one was written over, when the snapshot's listing is that
    generation's. Only the folders that changed since then get new listing blobs.
    """
    if snapshot.generation != manifest.generation:
        # A new generation was written over what the last integrity check saw (the damaged
        # files stored again): its findings no longer describe this backup.
        snapshot.verified_at, snapshot.verify_problems = None, []
    root = _updated_listing(snapshot, manifest, previous) or listing.build(native_entries(manifest))
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


def _updated_listing(snapshot: Snapshot, manifest: native.Manifest, previous: native.Manifest | None) -> str:
    """The new listing derived from the snapshot's current one, or "" when it must be built."""
    if (
        previous is None
        or not snapshot.listing_root
        or snapshot.generation != previous.generation
        or snapshot.path != previous.path
    ):
        return ""
    changes = _listing_changes(previous.entries, manifest.entries)
    if changes is None:
        return ""
    try:
        return listing.update(snapshot.listing_root, changes)
    except (listing.CannotUpdate, KeyError):
        return ""


def _plain_paths(entries: list[native.Entry]) -> bool:
    """No empty path, no empty part, no leading or trailing '/': `listing.build` takes each path as
    it is. Checked on all paths joined by NUL (a NUL inside a path can only fail the check)."""
    if not entries:
        return True
    joined = b"\0".join([entry.path for entry in entries])
    return not (
        not joined
        or joined[:1] in (b"/", b"\0")
        or joined[-1:] in (b"/", b"\0")
        or b"//" in joined
        or b"\0/" in joined
        or b"/\0" in joined
        or b"\0\0" in joined
    )


def _listing_changes(
    before: list[native.Entry], after: list[native.Entry]
) -> dict[str, listing.Entry | None] | None:
    """What listing.update needs to turn the listing of `before` into that of `after`: the
    listing entries that differ, by path (None: removed). None when the two are not both
    well-formed trees (see listing.update): then the listing is built from scratch.

    Entries a new generation kept from the old one are the same objects, so comparing costs
    little more than a look-up per entry.
    """
    old = {entry.path: entry for entry in before}
    new_paths = {entry.path for entry in after}
    if len(old) != len(before) or len(new_paths) != len(after):
        return None  # a path listed twice
    if not (_plain_paths(before) and _plain_paths(after)):
        return None
    changed: dict[bytes, native.Entry | None] = {}
    kept_in: set[bytes] = set()  # folders of the entries that did not change
    new_dirs = {b""}
    for entry in after:
        path = entry.path
        was = old.get(path)
        if was is entry or (was is not None and _listing_entry(was) == _listing_entry(entry)):
            kept_in.add(path.rpartition(b"/")[0])
        else:
            changed[path] = entry
        if entry.type == "d":
            new_dirs.add(path)
    for path in old.keys() - new_paths:
        changed[path] = None

    def old_dir(path: bytes) -> bool:
        found = old.get(path)
        return not path or (found is not None and found.type == "d")

    # Well-formed, before and after: every entry's folder is a folder entry (or the root).
    if not kept_in <= new_dirs or not all(old_dir(folder) for folder in kept_in):
        return None
    for path, now in changed.items():
        folder = path.rpartition(b"/")[0]
        if now is not None and folder not in new_dirs:
            return None
        if path in old and not old_dir(folder):
            return None
    return {names.from_bytes(path): _listing_entry(now) if now else None for path, now in changed.items()}


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
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = manifest.encoded() or encode_manifest(manifest)  # as committed or read: no need to encode
    tmp = folder / f".{manifest.name}.tmp"
    # A manifest lists the client's file names: for the panel's user only, whatever the umask.
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # a leftover .tmp keeps its old mode otherwise
        handle.write(data)
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
