"""Reading native backups: manifests, listings, locking and deletion.

Everything read from the destination is untrusted: manifests are validated on decoding
(manifest_codec); restoring their content is in restore.py.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from destinations.ftp import PermanentError, RemoteEntry, RemoteStore

from .common import (
    ACCOUNT_RE,
    BACKUP_ID_RE,
    LOCK_FILE,
    MANIFEST_RE,
    MANIFEST_TMP_RE,
    ManifestCorrupt,
    ManifestMissing,
    ObjectCorrupt,
    split_backup_path,
)
from .manifest import Manifest
from .manifest_codec import decode_manifest

# --- manifests ------------------------------------------------------------------------------


def _download_all(store: RemoteStore, path: str) -> bytes:
    return b"".join(store.download(path))


def read_manifest(
    store: RemoteStore,
    backup_path: str,
    *,
    keep_entries: bool = True,
    listing: Sequence[RemoteEntry] | None = None,
    cached: Manifest | None = None,
) -> Manifest:
    """The backup's valid manifest: the highest generation that decodes and validates.

    Raises ManifestMissing when the folder holds none (or does not exist), ManifestCorrupt
    when none is valid. FTP errors propagate: a manifest that could not be *downloaded* is
    never mistaken for a damaged one (that would make a later run delete live data).

    `cached`: a local copy of this backup's manifest (decoded, so validated). It is returned
    instead of downloading when the folder's newest manifest is that generation with that
    size; otherwise the destination's manifest is read, as without it.
    """
    account, backup_id = split_backup_path(backup_path)
    if listing is None:
        try:
            listing = store.listdir(backup_path)
        except PermanentError as exc:
            raise ManifestMissing(f"{backup_path}: no such backup folder ({exc})") from exc
    generations = sorted(
        (int(match.group(1)), entry.name, entry.size)
        for entry in listing
        if entry.type == "file" and (match := MANIFEST_RE.match(entry.name))
    )
    if not generations:
        raise ManifestMissing(f"{backup_path} holds no manifest: the backup was never completed")
    newest_generation, _name, newest_size = generations[-1]
    if (
        cached is not None
        and (cached.account, cached.backup_id) == (account, backup_id)
        and cached.stored_size > 0
        and (cached.generation, cached.stored_size) == (newest_generation, newest_size)
    ):
        return cached
    problems = []
    for generation, name, listed_size in reversed(generations):
        data = _download_all(store, f"{backup_path}/{name}")
        if listed_size is not None and listed_size != len(data):
            # A short read is a transfer problem, not a damaged manifest.
            raise ObjectCorrupt(
                f"{backup_path}/{name}: read {len(data)} bytes, the server lists {listed_size}"
            )
        try:
            return decode_manifest(
                data, account=account, backup_id=backup_id, generation=generation, keep_entries=keep_entries
            )
        except ManifestCorrupt as exc:
            problems.append(f"{name}: {exc}")
    raise ManifestCorrupt(f"{backup_path}: no valid manifest ({'; '.join(problems)})")


@dataclass
class BackupListing:
    """One `<account>/<backup_id>/` folder as found on the destination."""

    account: str
    backup_id: str
    path: str
    manifest: Manifest | None  # header only (entries not loaded)
    problem: str | None  # why there is no manifest, when there is none
    locked: bool
    unfinished: bool = False  # .tmp manifest or packs without a manifest: a run in progress or failed


def backup_folders(
    store: RemoteStore, account: str | None = None
) -> Iterator[tuple[str, str, list[RemoteEntry]]]:
    """Every `<account>/<backup_id>/` folder on the destination (or of one account), in name
    order, as (account, backup_id, the folder's listing); each folder is listed as it is
    reached. An account folder that cannot be listed is passed over."""
    if account is not None:
        accounts = [account]
    else:
        accounts = sorted(e.name for e in store.listdir("") if e.type == "dir" and ACCOUNT_RE.match(e.name))
    for name in accounts:
        try:
            folders = store.listdir(name)
        except PermanentError:
            continue
        for folder in sorted(f.name for f in folders if f.type == "dir" and BACKUP_ID_RE.match(f.name)):
            yield name, folder, store.listdir(f"{name}/{folder}")


def list_backups(store: RemoteStore, account: str | None = None) -> list[BackupListing]:
    """Every native backup on the destination (or of one account), for a reindex."""
    found = []
    for name, folder, listing in backup_folders(store, account):
        path = f"{name}/{folder}"
        names = {entry.name for entry in listing}
        locked = LOCK_FILE in names
        unfinished = any(MANIFEST_TMP_RE.match(n) for n in names)
        manifest: Manifest | None = None
        problem = None
        try:
            manifest = read_manifest(store, path, keep_entries=False, listing=listing)
        except ManifestMissing as exc:
            problem = str(exc)
            unfinished = True
        except ManifestCorrupt as exc:
            problem = str(exc)
        found.append(BackupListing(name, folder, path, manifest, problem, locked, unfinished))
    return found


def delete_backup(store: RemoteStore, backup_path: str, manifest: Manifest | None = None) -> None:
    """Remove the manifests first (from then on it is no backup), then everything else.

    Objects the manifest names are deleted by name: pure-ftpd truncates listings at 2,000
    entries, so a big backup's packs/ folder cannot be emptied from a listing alone.
    """
    split_backup_path(backup_path)
    try:
        listing = store.listdir(backup_path)
    except PermanentError:
        return
    if manifest is None:
        try:
            manifest = read_manifest(store, backup_path, keep_entries=False, listing=listing)
        except (ManifestMissing, ManifestCorrupt):
            manifest = None
    manifests = sorted(
        (e.name for e in listing if MANIFEST_RE.match(e.name) or MANIFEST_TMP_RE.match(e.name)), reverse=True
    )
    for name in manifests:
        store.remove(f"{backup_path}/{name}")
    if manifest is not None:
        for rel in sorted(manifest.referenced_objects() - {manifest.name}):
            with contextlib.suppress(PermanentError):  # already gone
                store.remove(f"{backup_path}/{rel}")
    store.remove_tree(backup_path)


def set_locked(store: RemoteStore, backup_path: str, locked: bool) -> None:
    split_backup_path(backup_path)
    path = f"{backup_path}/{LOCK_FILE}"
    if locked:
        store.upload_file(path, io.BytesIO(b"locked: kept out of rotation\n"))
    elif store.stat(path) is not None:
        store.remove(path)


__all__ = [
    "BackupListing",
    "delete_backup",
    "list_backups",
    "read_manifest",
    "set_locked",
]
