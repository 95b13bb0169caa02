"""Reindex: make the index of a destination match what really lies on it.

New backups are added, changed ones re-read, vanished ones removed from the index; broken or
incomplete ones are kept but marked, and never offered for restore. An archive (or native
manifest) whose size and modification time are unchanged since the last read is not read
again, so a reindex of an unchanged destination costs a listing.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from django.utils import timezone

from destinations import listing
from destinations.formats import cpanel, native
from destinations.formats.cpanel.tarsafe.stream import IterStream
from destinations.formats.native.common import ACCOUNT_RE, LOCK_FILE, MANIFEST_RE
from destinations.ftp import FtpError, FtpSession, RemoteEntry, RemoteStore
from destinations.models import Destination, Engine
from destinations.sessions import open_session
from destinations.streams import prefetch
from jobs import catalog, queue
from jobs.models import Account, QueueItem, Snapshot
from jobs.queue import Reporter

logger = logging.getLogger(__name__)
State = Snapshot.State

# How deep a cPanel destination is walked: <dir>/weekly/2025-07-06/accounts/bob.tar.gz is 4.
MAX_DEPTH = 5
# A level of the walk with this many folders is listed over several connections at once.
PARALLEL_LISTING_FROM = 8
MAX_PARALLEL_LISTINGS = 4


def queue_reindex(destination: Destination, *, requested_by: Any = None) -> QueueItem:
    """Queue a reindex, or answer the one already pending or running for this destination."""
    return queue.enqueue_once(
        QueueItem.Kind.REINDEX,
        title=f"reindex {destination.name}",
        destination=destination,
        requested_by=requested_by,
    )


def lock_key(destination_id: int) -> str:
    """The run lock a reindex holds on its destination."""
    return f"reindex:destination:{destination_id}"


def run(item: QueueItem, reporter: Reporter) -> dict[str, Any]:
    destination = Destination.for_work(item.destination_id)
    # Two reindexes of one destination never overlap (the queue answers the pending one, and
    # this conditional update stops a duplicate delivery).
    if not queue.take_lock(item.pk, lock_key(destination.pk)):
        raise RuntimeError("Another reindex of this destination is running.")
    reporter.log(f"Reindexing {destination.name} ({destination.get_engine_display()} engine)")
    with open_session(destination) as session:
        if destination.engine == Engine.NATIVE:
            summary = reindex_native(destination, session, reporter)
        else:
            summary = reindex_cpanel(destination, session, reporter)
    Destination.objects.filter(pk=destination.pk).update(last_reindex=timezone.now())
    reporter.log(
        "Done: {added} added, {updated} re-read, {unchanged} unchanged, {removed} removed, "
        "{problems} with problems".format(**summary)
    )
    if summary["failed"]:
        summary["status"] = "partial"
        summary["error"] = f"{summary['failed']} backups could not be read"
    return summary


def _summary() -> dict[str, Any]:
    return {"added": 0, "updated": 0, "unchanged": 0, "removed": 0, "problems": 0, "failed": 0}


def _account(username: str | None) -> Account | None:
    if not username or not ACCOUNT_RE.match(username) or len(username) > 32:
        return None
    account, _ = Account.objects.get_or_create(username=username, defaults={"source": Account.Source.BACKUPS})
    return account


def _busy_paths(destination: Destination) -> set[str]:
    """Backups a running job is writing right now: a reindex leaves them to it."""
    running_jobs = QueueItem.objects.filter(
        kind=QueueItem.Kind.BACKUP, status=QueueItem.Status.RUNNING, destination=destination
    ).values_list("job__uuid", flat=True)
    return set(
        Snapshot.objects.filter(
            destination=destination,
            state__in=[State.WRITING, State.UPDATING],
            job_uuid__in=list(running_jobs),
        ).values_list("path", flat=True)
    )


# --- native ---------------------------------------------------------------------------------


@dataclass
class _NativeFolder:
    path: str
    account: str
    generation: int
    manifest_size: int | None
    manifest_mtime: datetime | None
    locked: bool


def scan_native(conn: RemoteStore) -> list[_NativeFolder]:
    """Every `<account>/<backup_id>/` with its newest manifest's name, from listings only."""
    found = []
    for account, folder, entries in native.backup_folders(conn):
        manifests = sorted(
            (int(match.group(1)), entry)
            for entry in entries
            if entry.type == "file" and (match := MANIFEST_RE.match(entry.name))
        )
        top = manifests[-1] if manifests else None
        found.append(
            _NativeFolder(
                path=f"{account}/{folder}",
                account=account,
                generation=top[0] if top else 0,
                manifest_size=top[1].size if top else None,
                manifest_mtime=top[1].mtime if top else None,
                locked=any(e.name == LOCK_FILE for e in entries),
            )
        )
    return found


def reindex_native(destination: Destination, session: FtpSession, reporter: Reporter) -> dict[str, Any]:
    summary = _summary()
    with session.connection() as conn:
        folders = scan_native(conn)
        reporter.log(f"Found {len(folders)} backup folders")
        known = {s.path: s for s in Snapshot.objects.filter(destination=destination, engine=Engine.NATIVE)}
        busy = _busy_paths(destination)
        reporter.update(files_total=len(folders), files_done=0)
        for done, folder in enumerate(folders, start=1):
            reporter.check_abort()
            reporter.update(files_done=done)
            snapshot = known.get(folder.path)
            if folder.path in busy:
                continue
            if (
                snapshot is not None
                and snapshot.state == State.COMPLETE
                and snapshot.generation == folder.generation
                and snapshot.remote_size == folder.manifest_size
            ):
                summary["unchanged"] += 1
                continue
            try:
                _read_native(destination, conn, folder, snapshot, summary, reporter)
            except FtpError as exc:
                summary["failed"] += 1
                reporter.log(f"{folder.path}: could not be read: {exc.message}")
    found = {folder.path for folder in folders}
    for path, snapshot in known.items():
        if path not in found and path not in busy:
            catalog.forget(snapshot)
            summary["removed"] += 1
            reporter.log(f"{path}: gone from the destination; removed from the index")
    return summary


def _read_native(
    destination: Destination,
    conn: RemoteStore,
    folder: _NativeFolder,
    snapshot: Snapshot | None,
    summary: dict[str, Any],
    reporter: Reporter,
) -> None:
    is_new = snapshot is None
    if snapshot is None:
        snapshot = Snapshot(
            destination=destination,
            account=_account(folder.account),
            account_name=folder.account,
            engine=Engine.NATIVE,
            path=folder.path,
            created=timezone.now(),
        )
    try:
        manifest = native.read_manifest(conn, folder.path)
    except (native.ManifestMissing, native.ManifestCorrupt) as exc:
        snapshot.state = State.INCOMPLETE if isinstance(exc, native.ManifestMissing) else State.BROKEN
        snapshot.flags = ["incomplete"] if isinstance(exc, native.ManifestMissing) else ["corrupt_manifest"]
        snapshot.problems = [str(exc)]
        snapshot.locked = snapshot.locked or folder.locked
        snapshot.indexed = timezone.now()
        snapshot.save()
        summary["problems"] += 1
        summary["added" if is_new else "updated"] += 1
        reporter.log(f"{folder.path}: {exc}")
        return
    snapshot.type = manifest.type if manifest.type in Snapshot.Type.values else Snapshot.Type.FULL
    snapshot.job_uuid = _uuid(manifest.job_uuid)
    snapshot.remote_size = folder.manifest_size
    snapshot.remote_mtime = folder.manifest_mtime
    # The destination's marker restores locks after a disaster; for backups the index
    # already knows, the index is the truth (the marker may lag behind an unlock).
    catalog.record_native(snapshot, manifest, locked=folder.locked if is_new else None)
    summary["added" if is_new else "updated"] += 1
    reporter.log(f"{folder.path}: {'added' if is_new else 're-read'} (generation {manifest.generation})")


def _uuid(value: str) -> Any:
    import uuid

    try:
        return uuid.UUID(value)
    except (ValueError, TypeError):
        return None


# --- cPanel ---------------------------------------------------------------------------------


def walk_files(session: FtpSession, max_depth: int = MAX_DEPTH) -> list[tuple[str, int, datetime | None]]:
    """Every file under the destination directory, at most `max_depth` folders down.

    Folder by folder, level by level; a level of many folders is listed over several of the
    session's connections at once (a listing costs a round trip or more on a real network)."""
    files: list[tuple[str, int, datetime | None]] = []
    level, depth = [""], 0
    limit = session.max_connections or MAX_PARALLEL_LISTINGS
    lanes = max(1, min(limit, MAX_PARALLEL_LISTINGS))

    def list_some(folders: list[str]) -> list[tuple[str, list[RemoteEntry]]]:
        with session.connection() as conn:
            return [(folder, conn.listdir(folder)) for folder in folders]

    with ThreadPoolExecutor(lanes, thread_name_prefix="reindex-list") as pool:
        while level:
            if len(level) >= PARALLEL_LISTING_FROM and lanes > 1:
                batches = [level[lane::lanes] for lane in range(lanes)]
                listed = [pair for batch in pool.map(list_some, batches) for pair in batch]
            else:
                listed = list_some(level)
            next_level = []
            for folder, entries in listed:
                for entry in entries:
                    path = posixpath.join(folder, entry.name) if folder else entry.name
                    if entry.type == "file":
                        files.append((path, entry.size or 0, entry.mtime))
                    elif entry.type == "dir" and depth < max_depth:
                        next_level.append(path)
            level, depth = next_level, depth + 1
    return files


def _remote_key(candidate: cpanel.Candidate) -> str:
    return "|".join(candidate.parts) if candidate.split else ""


def reindex_cpanel(destination: Destination, session: FtpSession, reporter: Reporter) -> dict[str, Any]:
    summary = _summary()
    candidates = cpanel.discover(walk_files(session))
    reporter.log(f"Found {len(candidates)} account archives")
    # What deciding "unchanged" needs; an archive to read again is re-fetched whole.
    known = {
        s.path: s
        for s in Snapshot.objects.filter(destination=destination, engine=Engine.CPANEL).only(
            "pk",
            "destination_id",
            "path",
            "indexed",
            "remote_size",
            "remote_mtime",
            "remote_key",
            "flags",
            "state",
        )
    }
    to_read = []
    for candidate in candidates:
        snapshot = known.get(candidate.path)
        if (
            snapshot is not None
            and snapshot.indexed is not None
            and snapshot.remote_size == candidate.size
            and snapshot.remote_mtime == candidate.mtime
            and snapshot.remote_key == _remote_key(candidate)
        ):
            summary["unchanged"] += 1
            if ("incomplete" in snapshot.flags) != candidate.incomplete:
                _set_incomplete(snapshot, candidate.incomplete)
            continue
        to_read.append(candidate)
    total = sum(c.size for c in to_read)
    reporter.update(bytes_total=total, bytes_done=0, files_total=len(to_read), files_done=0)
    done_bytes = 0
    for index, candidate in enumerate(to_read, start=1):
        reporter.check_abort()
        reporter.log(f"Reading {candidate.path} ({candidate.size} bytes)")
        snapshot = (
            Snapshot.objects.filter(pk=known[candidate.path].pk).first() if candidate.path in known else None
        )
        try:
            with session.connection() as conn:
                archive = _read_archive(conn, candidate, reporter, done_bytes)
        except FtpError as exc:
            summary["failed"] += 1
            reporter.log(f"{candidate.path}: could not be read: {exc.message}")
            archive = None
        done_bytes += candidate.size
        reporter.update(bytes_done=done_bytes, files_done=index)
        if archive is None:
            continue
        record_cpanel(destination, candidate, archive, snapshot)
        summary["added" if snapshot is None else "updated"] += 1
        if archive.flags or candidate.incomplete:
            summary["problems"] += 1
            reporter.log(
                f"{candidate.path}: flagged {', '.join(sorted(archive.flags | _incomplete(candidate)))}"
            )
    found = {c.path for c in candidates}
    for path, snapshot in known.items():
        if path not in found:
            catalog.forget(snapshot)
            summary["removed"] += 1
            reporter.log(f"{path}: gone from the destination; removed from the index")
    return summary


def _incomplete(candidate: cpanel.Candidate) -> set[str]:
    return {"incomplete"} if candidate.incomplete else set()


def _set_incomplete(snapshot: Snapshot, incomplete: bool) -> None:
    flags = [f for f in snapshot.flags if f != "incomplete"] + (["incomplete"] if incomplete else [])
    snapshot.flags = sorted(flags)
    if snapshot.state in (State.COMPLETE, State.INCOMPLETE):
        snapshot.state = State.INCOMPLETE if incomplete else State.COMPLETE
    snapshot.save(update_fields=["flags", "state"])


class _Counted:
    """Counts bytes as they stream past, for the progress bar."""

    def __init__(self, chunks: Iterator[bytes], reporter: Reporter, base: int) -> None:
        self.chunks = chunks
        self.reporter = reporter
        self.base = base
        self.seen = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.seen += len(chunk)
            self.reporter.update(bytes_done=self.base + self.seen)
            yield chunk


def _read_archive(
    conn: RemoteStore, candidate: cpanel.Candidate, reporter: Reporter, base: int
) -> cpanel.ArchiveIndex:
    pieces = candidate.parts or (candidate.path,)
    chunks = prefetch(chain.from_iterable(conn.download(piece) for piece in pieces))
    stream = IterStream(_Counted(chunks, reporter, base))
    return cpanel.read_archive(stream, account_hint=candidate.account_hint)


def record_cpanel(
    destination: Destination,
    candidate: cpanel.Candidate,
    archive: cpanel.ArchiveIndex,
    snapshot: Snapshot | None,
) -> Snapshot:
    name = archive.account or candidate.account_hint
    flags = set(archive.flags) | _incomplete(candidate)
    if archive.account is None:
        flags.add("no_account")
    if not archive.complete:  # a fatal flag: the archive is unreadable as a whole
        state = State.BROKEN
    elif candidate.incomplete:
        state = State.INCOMPLETE
    else:
        state = State.COMPLETE
    root = listing.build(
        listing.Entry(
            path=entry.path,
            type=entry.type,
            size=entry.size,
            mtime=entry.mtime,
            mode=entry.mode,
            target=entry.target,
        )
        for entry in archive.home_entries
    )
    created = candidate.date or candidate.mtime or datetime.now(UTC)
    if snapshot is None:
        snapshot = Snapshot(destination=destination, engine=Engine.CPANEL, path=candidate.path)
    snapshot.account = _account(archive.account) if archive.account else None
    snapshot.account_name = (name or "")[:64]
    snapshot.type = Snapshot.Type.FULL
    snapshot.layout = candidate.layout
    snapshot.created = created
    snapshot.size = candidate.size
    snapshot.state = state
    snapshot.flags = sorted(flags)
    snapshot.problems = [f"{p.member}: {p.reason}" for p in archive.problems[:200]] + list(candidate.notes)
    snapshot.parts = [
        {"kind": p.kind, "name": p.name, "size": p.size, **({"text": p.text} if p.text is not None else {})}
        for p in archive.parts
    ]
    snapshot.listing_root = root
    snapshot.remote_size = candidate.size
    snapshot.remote_mtime = candidate.mtime
    snapshot.remote_key = _remote_key(candidate)
    snapshot.meta = {
        "top": archive.top,
        "pieces": list(candidate.parts or (candidate.path,)),
        "compressed": archive.compressed,
        "homedir_tar": archive.homedir_tar,
        "total_size": archive.total_size,
        "members": archive.member_count,
        "domain": archive.account_info.get("DNS", ""),
    }
    snapshot.indexed = timezone.now()
    snapshot.save()
    return snapshot
