"""Backup runs: which backup each run writes, the incremental cycle, and rotation.

Full: every run writes a new complete backup; only once it is complete does rotation remove
the oldest beyond the retention. Incremental (the FTP cycle): runs 1..N each write a full
backup into a slot of their own; every later run takes the oldest unlocked slot and pushes
only the changes onto it. Locked backups leave the cycle. A slot being written or updated is
not offered for restore; the destination keeps its previous generation intact until the new
manifest commits, so a failed run never loses a restorable point in time.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from destinations import catalog
from destinations.engines import native
from destinations.ftp import CONNECTION_FAILURES, FtpError, FtpSession
from destinations.models import Engine, Snapshot
from destinations.sessions import open_session

from . import mysql, queue
from .models import Account, BackupJob, QueueItem

logger = logging.getLogger(__name__)
State = Snapshot.State


class RunFailed(RuntimeError):
    """Every account of a run failed. `failures` holds the per-account results (account,
    error, hint) for whoever reports the run; the message names them all."""

    def __init__(self, failures: list[dict[str, Any]]) -> None:
        self.failures = failures
        self.message = "; ".join(f"{r['account']}: {r['error']}" for r in failures)
        hints = {r.get("hint", "") for r in failures}
        self.hint = hints.pop() if len(hints) == 1 else ""
        super().__init__(self.message)


def queue_run(job: BackupJob, *, requested_by: Any = None) -> QueueItem:
    """Queue a run of `job` now (the "Run now" button and the API)."""
    with transaction.atomic():
        return queue.enqueue(
            QueueItem.Kind.BACKUP,
            title=job.name,
            job=job,
            destination=job.destination,
            requested_by=requested_by,
        )


def take_job(item_id: int) -> bool | None:
    """Reserve the job of pending item `item_id` for it, so two runs of a job never overlap.

    True: reserved (or already ours). False: another run of the job holds it; try later.
    None: the item is gone or no longer pending; nothing to do.
    """
    item = QueueItem.objects.filter(pk=item_id).select_related("job").first()
    if item is None or item.status != QueueItem.Status.PENDING or item.job_id is None:
        return None if item is None or item.status != QueueItem.Status.PENDING else True
    if BackupJob.objects.filter(pk=item.job_id, running=item).exists():
        return True
    if BackupJob.objects.filter(pk=item.job_id, running__isnull=True).update(running=item):
        return True
    holder = BackupJob.objects.filter(pk=item.job_id).values_list("running__status", flat=True).first()
    if holder is not None and holder != QueueItem.Status.RUNNING and holder != QueueItem.Status.PENDING:
        # The holder finished without releasing (should not happen); take it over.
        return bool(BackupJob.objects.filter(pk=item.job_id).update(running=item))
    return False


def retry_delay() -> float:
    return 5.0 + random.uniform(0, 5.0)


@dataclass
class Target:
    snapshot: Snapshot
    previous: native.Manifest | None


def run(item: QueueItem, reporter: queue.Reporter) -> dict[str, Any]:
    job = BackupJob.objects.select_related("destination").filter(pk=item.job_id or 0).first()
    if job is None:
        raise RuntimeError("The backup job was deleted.")
    destination = job.destination
    if destination.disabled:
        raise RuntimeError(f"Destination {destination} is disabled.")
    if destination.read_only or destination.engine != Engine.NATIVE:
        raise RuntimeError(
            f"Destination {destination} does not take backups (read only or not a Backupsite destination)."
        )
    accounts = list(job.accounts.order_by("username"))
    if not accounts:
        raise RuntimeError("The job has no accounts.")
    progress = queue.EngineProgress(reporter)
    results: list[dict[str, Any]] = []
    with open_session(destination) as session:
        for account in accounts:
            reporter.check_abort()
            reporter.log(
                f"Account {account.username}: starting ({job.get_type_display().lower()}, keep {job.retention})"
            )
            notes: list[str] = []
            try:
                snapshot, manifest = back_up_account(job, account, session, progress, notes)
            except queue.Aborted:
                raise
            except native.BackupAborted as exc:
                raise queue.Aborted(str(exc) or "Aborted by an admin.") from None
            except (FtpError, native.NativeError, mysql.MysqlError, OSError) as exc:
                message = getattr(exc, "message", None) or str(exc)
                reporter.log(f"Account {account.username}: failed: {message}")
                failure = {"account": account.username, "status": "failed", "error": message, **_notes(notes)}
                if getattr(exc, "hint", ""):
                    failure["hint"] = exc.hint  # type: ignore[union-attr]
                if isinstance(exc, CONNECTION_FAILURES):
                    failure["unreachable"] = True
                results.append(failure)
                continue
            progress.stage_done()
            totals = manifest.totals
            results.append(
                {
                    "account": account.username,
                    "status": "completed",
                    "path": snapshot.path,
                    "snapshot": snapshot.pk,
                    "generation": manifest.generation,
                    "files": totals.get("files", 0),
                    "bytes": totals.get("bytes", 0),
                    "uploaded": totals.get("uploaded", 0),
                    "databases": len(manifest.databases),
                    **_notes(notes),
                }
            )
            reporter.log(f"Account {account.username}: done → {snapshot.path}")
    failed = [r for r in results if r["status"] == "failed"]
    if failed and len(failed) == len(results):
        raise RunFailed(failed)
    result: dict[str, Any] = {"accounts": results}
    if failed:
        result["status"] = "partial"
        result["error"] = f"{len(failed)} of {len(results)} accounts failed"
    return result


def _notes(notes: list[str]) -> dict[str, Any]:
    return {"notes": notes} if notes else {}


def back_up_account(
    job: BackupJob,
    account: Account,
    session: FtpSession,
    progress: queue.EngineProgress,
    notes: list[str] | None = None,
) -> tuple[Snapshot, native.Manifest]:
    """Back up one account; `notes` collects what the result should say (databases another
    account owns, which this one no longer backs up)."""
    if job.include_home and not account.home:
        raise native.NativeError(f"account {account.username} has no home folder on this server")
    target = choose_target(job, account, session)
    snapshot = target.snapshot
    databases: list[mysql.DumpSource] = []
    if job.include_databases:
        server = mysql.server()
        names, found_notes = mysql.account_databases(account.username, account.databases, Account.owners())
        for note in found_notes:
            progress.log(f"Account {account.username}: {note}")
        if notes is not None:
            notes.extend(found_notes)
        databases = [mysql.DumpSource(name=name, server=server) for name in names]
    kind = "update of" if target.previous else "new"
    progress.log(f"Writing {kind} backup {snapshot.path}")
    try:
        manifest = native.write_backup(
            session,
            account=account.username,
            backup_id=snapshot.path.rsplit("/", 1)[1],
            job_uuid=str(job.uuid),
            job_name=job.name,
            backup_type="incremental" if job.type == BackupJob.Type.INCREMENTAL else "full",
            home=Path(account.home) if job.include_home else None,
            excludes=list(job.excludes),
            databases=databases,
            compression=job.compression,
            progress=progress,
            previous=target.previous,
        )
    except BaseException:
        if target.previous is not None:
            # The slot's previous generation is untouched on the destination until a new
            # manifest commits: it is still the oldest, so the next run finishes this slot.
            Snapshot.objects.filter(pk=snapshot.pk, state=State.UPDATING).update(state=State.COMPLETE)
        raise
    catalog.record_native(snapshot, manifest, previous=target.previous)
    rotate(job, account, session, progress)
    return snapshot, manifest


def choose_target(job: BackupJob, account: Account, session: FtpSession) -> Target:
    destination = job.destination
    mine = Snapshot.objects.filter(
        destination=destination, account_name=account.username, job_uuid=job.uuid, engine=Engine.NATIVE
    )
    if job.type == BackupJob.Type.INCREMENTAL:
        slots = mine.filter(type=Snapshot.Type.INCREMENTAL, locked=False)
        unfinished = slots.filter(state__in=[State.WRITING, State.UPDATING]).order_by("created").first()
        if unfinished is not None:
            return _resume(unfinished, session)
        complete = slots.filter(state=State.COMPLETE)
        if complete.count() >= job.retention:
            oldest = complete.order_by("created", "pk").first()
            assert oldest is not None
            return _update(oldest, session)
    else:
        _forget_unfinished(mine.filter(type=Snapshot.Type.FULL, state=State.WRITING), session)
    return Target(snapshot=_new_snapshot(job, account), previous=None)


def _new_snapshot(job: BackupJob, account: Account) -> Snapshot:
    backup_id = native.new_backup_id()
    return Snapshot.objects.create(
        destination=job.destination,
        account=account,
        account_name=account.username,
        engine=Engine.NATIVE,
        type=job.type,
        path=native.backup_path(account.username, backup_id),
        created=timezone.now(),
        state=State.WRITING,
        job_uuid=job.uuid,
    )


def _update(slot: Snapshot, session: FtpSession) -> Target:
    # The destination's manifest is the truth; the copy cached when the slot last committed
    # stands in for it (no download) when its newest manifest has that generation and size.
    with session.connection() as conn:
        previous = native.read_manifest(conn, slot.path, cached=catalog.cached_manifest(slot))
    Snapshot.objects.filter(pk=slot.pk).update(state=State.UPDATING)
    slot.state = State.UPDATING
    return Target(snapshot=slot, previous=previous)


def _resume(slot: Snapshot, session: FtpSession) -> Target:
    """Finish a slot a failed run left: update it from its last committed generation, or write
    it anew when it never committed one."""
    with session.connection() as conn:
        try:
            previous = native.read_manifest(conn, slot.path, cached=catalog.cached_manifest(slot))
        except native.ManifestMissing:
            previous = None
    Snapshot.objects.filter(pk=slot.pk).update(state=State.UPDATING if previous else State.WRITING)
    slot.state = State.UPDATING if previous else State.WRITING
    return Target(snapshot=slot, previous=previous)


def _forget_unfinished(unfinished: Any, session: FtpSession) -> None:
    """Full backups a failed run left half written are never restorable: remove them."""
    for snapshot in unfinished:
        with session.connection() as conn:
            native.delete_backup(conn, snapshot.path)
        snapshot.delete()


def rotate(job: BackupJob, account: Account, session: FtpSession, progress: queue.EngineProgress) -> None:
    """Remove the oldest complete, unlocked backups of this job beyond its retention.

    Runs only after the new backup is complete; never touches locked backups, other jobs'
    backups, or anything not complete."""
    kept = Snapshot.objects.filter(
        destination=job.destination,
        account_name=account.username,
        job_uuid=job.uuid,
        engine=Engine.NATIVE,
        type=job.type,
        locked=False,
        state=State.COMPLETE,
    ).order_by("-created", "-pk")
    for old in list(kept[job.retention :]):
        progress.log(f"Rotation: removing {old.path} (taken {old.created:%Y-%m-%d %H:%M:%S %Z})")
        with session.connection() as conn:
            native.delete_backup(conn, old.path)
        catalog.forget(old)


def run_deletion(item: QueueItem, reporter: queue.Reporter) -> dict[str, Any]:
    """Delete one backup by hand (a rotation item). Locked backups are refused."""
    snapshot = Snapshot.objects.select_related("destination").filter(pk=item.snapshot_id or 0).first()
    if snapshot is None:
        return {"deleted": None}
    if snapshot.locked:
        raise RuntimeError("This backup is locked; unlock it first.")
    if snapshot.engine != Engine.NATIVE or snapshot.destination.read_only:
        raise RuntimeError("Only backups Backupsite wrote, on a writable destination, can be deleted.")
    reporter.log(f"Deleting {snapshot.path}")
    with open_session(snapshot.destination) as session, session.connection() as conn:
        native.delete_backup(conn, snapshot.path)
    path = snapshot.path
    catalog.forget(snapshot)
    return {"deleted": path}
