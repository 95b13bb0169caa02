"""Writing a native backup: a full backup (generation 1) or an incremental push onto a slot.

write_backup scans the source, checks the slot (slot.py), plans what to store (plan.py),
packs the files (packing.py), uploads the packs and dumps (upload.py), then commits the
manifest; only after the commit is the old generation's garbage deleted.
Only the calling thread talks to the ProgressSink.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from destinations.ftp import FtpError, RemoteStore

from .common import (
    CHUNK_SIZE,
    PACK_SIZE,
    DumpSource,
    ProgressSink,
    Session,
    SlotConflict,
    backup_path,
    borrow,
)
from .manifest import Entry, Manifest, Part
from .manifest_codec import encode_manifest
from .packing import Run
from .plan import Plan, plan_incremental
from .reporter import Reporter
from .scan import scan_source
from .slot import ensure_format_file, prepare_slot, remove_objects
from .upload import commit_manifest, write_dump

BackupType = Literal["full", "incremental"]


# --- entry point ----------------------------------------------------------------------------


def write_backup(
    session: Session | RemoteStore,
    *,
    account: str,
    backup_id: str,
    job_uuid: str,
    job_name: str,
    backup_type: BackupType,
    home: Path | None,
    excludes: Sequence[str],
    databases: Sequence[DumpSource],
    compression: bool,
    progress: ProgressSink,
    previous: Manifest | None = None,
    pack_size: int = PACK_SIZE,
    chunk_size: int = CHUNK_SIZE,
    damaged_packs: Collection[str] = (),
) -> Manifest:
    """Write a backup into `<account>/<backup_id>/` and commit it; returns the new manifest.

    `previous=None`: a new backup (generation 1); the folder must not hold a committed backup.
    `previous` = the slot's current manifest: push the changes onto it as generation + 1.
    Raises BackupAborted, DumpFailed, SlotConflict, FtpError; in all those cases nothing was
    committed and the slot's previous generation (if any) is untouched and still valid.
    """
    if backup_type not in ("full", "incremental"):
        raise ValueError(f"backup_type must be full or incremental, not {backup_type!r}")
    base = backup_path(account, backup_id)
    names = [db.name for db in databases]
    if len(set(names)) != len(names):
        raise ValueError(f"database names must be unique: {names}")
    if previous is not None and (previous.account, previous.backup_id) != (account, backup_id):
        raise SlotConflict(f"the previous manifest belongs to {previous.path}, not {base}")
    generation = 1 if previous is None else previous.generation + 1
    reporter = Reporter(progress)
    created = datetime.now(UTC)
    reporter.check_abort(force=True)

    # Scan first: a home that cannot be read must not leave an empty slot behind.
    tree = scan_source(home, excludes) if home is not None else None
    with borrow(session) as conn:
        ensure_format_file(conn)
        # Plan from the manifest on the destination, not the caller's copy (which may be a
        # header without entries, e.g. from list_backups).
        current = prepare_slot(conn, base, previous, reporter)
    plan = (
        plan_incremental(tree, current, pack_size, damaged_packs)
        if tree is not None
        else Plan([], {}, [], set())
    )
    if tree is not None:
        for skipped in tree.skipped:
            reporter.skipped(skipped.path, skipped.reason)
        reporter.files_total = tree.files
        reporter.bytes_total = tree.bytes
        reporter.files_done = len(plan.reused)
        reporter.bytes_done = sum(entry.size for entry in plan.reused.values())
        reporter.files_unchanged = reporter.files_done
        reporter.bytes_unchanged = reporter.bytes_done
        reporter.log(
            f"{tree.files} files, {tree.bytes} bytes in {home}; {len(plan.jobs)} files to store, "
            f"{len(plan.reused)} unchanged"
            + (f"; rewriting {len(plan.reclaimed_packs)} sparse packs" if plan.reclaimed_packs else "")
        )
    reporter.tick(force=True)

    run = Run(
        session,
        base,
        generation,
        reporter,
        compression=compression,
        pack_size=pack_size,
        chunk_size=chunk_size,
    )
    committing = False

    def mark_committing() -> None:
        nonlocal committing
        committing = True

    try:
        if tree is not None and plan.jobs:
            run.pack_files(tree.root, plan.jobs, plan.reclaimed_packs)
        packs = run.packer.finish(run.reporter.tick)
        reporter.check_abort(force=True)
        dumps = [
            write_dump(session, base, generation, db, run.reporter, run.dump_objects) for db in databases
        ]
        reporter.check_abort(force=True)

        entries: list[Entry] = []
        add = entries.append
        reused, done = plan.reused, run.done
        used_packs: set[str] = set()
        files = dirs = links = home_bytes = stored = 0
        for entry in plan.entries:
            kind = entry.type
            if kind == "f":
                found = reused.get(entry.path) or done.get(entry.path)
                if found is None:
                    continue  # could not be read, and no earlier version
                add(found)
                files += 1
                home_bytes += found.size
                for chunk in found.chunks:
                    used_packs.add(chunk.pack)
                    stored += chunk.stored
            else:
                add(entry)
                if kind == "d":
                    dirs += 1
                elif kind == "l":
                    links += 1
        old_packs = {pack.name: pack for pack in current.packs} if current else {}
        pack_infos = [packs.get(name) or old_packs[name] for name in sorted(used_packs)]
        parts: list[Part] = []
        if tree is not None:
            parts.append(Part("homedir", "", home_bytes))
        parts.extend(Part("databases", dump.name, dump.size) for dump in dumps)
        if tree is not None:
            parts.extend(tree.mailboxes())
        totals = {
            "files": files,
            "dirs": dirs,
            "links": links,
            "bytes": home_bytes,
            "stored": stored,
            "pack_bytes": sum(pack.size for pack in pack_infos),
            "packs": len(pack_infos),
            "new_bytes": run.new_bytes,
            "uploaded": sum(pack.size for pack in packs.values()) + sum(dump.stored for dump in dumps),
            "reused_files": len(plan.reused),
            "reclaimed_packs": len(plan.reclaimed_packs),
            "kept_unreadable": run.kept_previous,
            "changed_on_reread": run.changed_on_reread,
            "skipped": (len(tree.skipped) if tree is not None else 0) + run.read_skipped,
            "excluded": tree.excluded if tree is not None else 0,
            "database_bytes": sum(dump.size for dump in dumps),
            "database_stored": sum(dump.stored for dump in dumps),
        }
        manifest = Manifest(
            account=account,
            backup_id=backup_id,
            generation=generation,
            type=backup_type,
            job_uuid=job_uuid,
            job_name=job_name,
            created=created,
            hostname=socket.gethostname(),
            packs=pack_infos,
            databases=dumps,
            parts=parts,
            totals=totals,
            entries=entries,
            chunk_size=chunk_size,
        )
        if tree is not None:
            manifest.owner, manifest.users, manifest.groups = tree.owner, tree.users, tree.groups
        data = encode_manifest(manifest)
        manifest.stored_size = len(data)
        manifest.remember_encoded(data)
        reporter.check_abort(force=True)
        with borrow(session) as conn:
            commit_manifest(conn, base, data, manifest.name, mark_committing)
    except BaseException:
        run.packer.abandon()
        if not committing:
            _cleanup_failed(session, base, generation, run, fresh=previous is None, reporter=reporter)
        raise

    reporter.files_done = reporter.files_total
    reporter.tick(force=True)
    reporter.log(
        f"committed {base} generation {generation}: {totals['files']} files, {len(dumps)} databases, "
        f"{totals['uploaded']} bytes uploaded"
        + (f"; {run.kept_prefix_bytes} bytes of grown files kept as stored" if run.kept_prefix_bytes else "")
    )
    # Only now is the old generation's garbage safe to delete.
    keep = manifest.referenced_objects()
    garbage = set(run.packer.attempted) | set(run.dump_objects)
    if current is not None:
        garbage |= current.referenced_objects()
    try:
        with borrow(session) as conn:
            # By name (listings may be cut); a failed run's leftovers are swept before the next.
            remove_objects(conn, base, sorted(garbage - keep), reporter)
    except FtpError as exc:
        reporter.log(f"committed, but deleting old data failed ({exc}); the next run deletes it", "warning")
    return manifest


def _cleanup_failed(
    target: Session | RemoteStore, base: str, generation: int, run: Run, *, fresh: bool, reporter: Reporter
) -> None:
    """Best effort: remove what this run wrote. A later run's sweep removes whatever remains."""
    with contextlib.suppress(Exception), borrow(target) as conn:
        if fresh:
            conn.remove_tree(base)
        else:
            objects = set(run.packer.attempted) | set(run.dump_objects)
            objects.add(f"manifest-{generation:06d}.json.zst.tmp")
            for rel in sorted(objects):
                with contextlib.suppress(FtpError):
                    conn.remove(f"{base}/{rel}")
