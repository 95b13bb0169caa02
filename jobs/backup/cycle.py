"""Backup runs: which backup each run writes, the incremental cycle, and rotation.

Full: every run writes a new complete backup; only once it is complete does rotation remove
the oldest beyond the retention. Incremental (the FTP cycle): runs 1..N each write a full
backup into a slot of their own; every later run takes the oldest unlocked slot and pushes
only the changes onto it. Locked backups leave the cycle. A slot being written or updated is
not offered for restore; the destination keeps its previous generation intact until the new
manifest commits, so a failed run never loses a restorable point in time.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from backupsite.errors import Error, hint_of, message_of
from destinations.formats import native
from destinations.ftp import CONNECTION_FAILURES, FtpError, FtpSession
from destinations.models import Engine
from destinations.sessions import open_session
from jobs import catalog, hostroot, mysql, queue
from jobs.backup import coverage
from jobs.dbserver.client import DumpSource, MysqlError
from jobs.models import Account, BackupJob, QueueItem, Snapshot

logger = logging.getLogger(__name__)
State = Snapshot.State


class RunFailed(Error):
    """Every account of a run failed. `failures` holds the per-account results (account,
    error, hint) for whoever reports the run; the message names them all."""

    def __init__(self, failures: list[dict[str, Any]]) -> None:
        self.failures = failures
        hints = {r.get("hint", "") for r in failures}
        super().__init__(
            "; ".join(f"{r['account']}: {r['error']}" for r in failures),
            hints.pop() if len(hints) == 1 else "",
        )


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
    item = QueueItem.objects.filter(pk=item_id).first()
    if item is None or item.status != QueueItem.Status.PENDING or item.job_id is None:
        return None if item is None or item.status != QueueItem.Status.PENDING else True
    return queue.take_lock(item.pk, BackupJob.lock_key(item.job_id))


def retry_delay() -> float:
    return 5.0 + random.uniform(0, 5.0)


@dataclass
class Target:
    snapshot: Snapshot
    previous: native.Manifest | None
    # Packs of the slot an integrity check found missing or corrupt: their files are stored again.
    damaged_packs: frozenset[str] = frozenset()


def run(item: QueueItem, reporter: queue.Reporter) -> dict[str, Any]:
    """Back up every account the job covers (decided now), several at a time.

    One account failing does not stop the others: its result says why and the item ends
    partial. Only the upload of each account runs in a worker thread; everything that touches
    the panel's database (choosing the slot, recording the backup, rotation) stays in this
    thread, in account order of completion."""
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
    chosen = coverage.covered(job)
    for username, why in chosen.skipped.items():
        reporter.log(f"Account {username}: skipped ({why})")
    accounts = chosen.accounts
    if not accounts:
        raise RuntimeError(
            "The job has no accounts."
            if job.accounts_mode == BackupJob.AccountsMode.SELECTED and not chosen.skipped
            else "No account matches the job's filters."
        )
    at_once = parallel_accounts(job, len(accounts))
    reporter.log(f"{len(accounts)} accounts, {at_once} at a time")
    board = ProgressBoard(reporter)
    results: dict[str, dict[str, Any]] = {}
    running: dict[concurrent.futures.Future[native.Manifest], Prepared] = {}
    waiting = list(accounts)
    with (
        open_session(destination) as session,
        concurrent.futures.ThreadPoolExecutor(at_once, thread_name_prefix="account") as pool,
    ):
        try:
            while waiting or running:
                while waiting and len(running) < at_once:
                    reporter.check_abort()
                    account = waiting.pop(0)
                    reporter.log(
                        f"Account {account.username}: starting "
                        f"({job.get_type_display().lower()}, keep {job.retention})"
                    )
                    sink = board.sink(account.username)
                    notes: list[str] = []
                    try:
                        prepared = prepare(job, account, session, sink, notes)
                    except FAILURES as exc:
                        results[account.username] = _failed(account, exc, notes, reporter)
                        continue
                    future = pool.submit(write, job, prepared, session, sink)
                    running[future] = prepared
                done, _ = concurrent.futures.wait(
                    running, timeout=0.25, return_when=concurrent.futures.FIRST_COMPLETED
                )
                board.publish()
                for future in done:
                    prepared = running.pop(future)
                    results[prepared.account.username] = _finish(
                        job, prepared, future, session, board, reporter
                    )
        except BaseException:
            board.abort = True  # the threads stop at their next check
            for future, prepared in running.items():
                future.cancel()
                with contextlib.suppress(BaseException):
                    future.result()
                give_up(prepared)
            raise
        finally:
            board.publish()
    ordered = [results[a.username] for a in accounts if a.username in results]
    failed = [r for r in ordered if r["status"] == "failed"]
    if failed and len(failed) == len(ordered):
        raise RunFailed(failed)
    result: dict[str, Any] = {"accounts": ordered}
    if chosen.skipped:
        result["skipped_accounts"] = chosen.skipped
    if failed:
        result["status"] = "partial"
        result["error"] = f"{len(failed)} of {len(ordered)} accounts failed"
    return result


FAILURES = (FtpError, native.NativeError, MysqlError, OSError)


def parallel_accounts(job: BackupJob, count: int) -> int:
    """How many accounts run at once: the job's setting, never more than the destination's
    connection cap (every account needs at least one connection) nor than there are accounts."""
    cap = job.destination.concurrency or job.parallel
    return max(1, min(job.parallel, cap, count))


def _finish(
    job: BackupJob,
    prepared: Prepared,
    future: concurrent.futures.Future[native.Manifest],
    session: FtpSession,
    board: ProgressBoard,
    reporter: queue.Reporter,
) -> dict[str, Any]:
    account = prepared.account
    try:
        manifest = future.result()
    except native.BackupAborted as exc:
        give_up(prepared)
        raise queue.Aborted(str(exc) or "Aborted by an admin.") from None
    except FAILURES as exc:
        give_up(prepared)
        return _failed(account, exc, prepared.notes, reporter)
    except BaseException:
        give_up(prepared)
        raise
    try:
        commit(job, prepared, manifest, session, board.sink(account.username))
    except FAILURES as exc:
        return _failed(account, exc, prepared.notes, reporter)
    snapshot = prepared.target.snapshot
    totals = manifest.totals
    reporter.log(f"Account {account.username}: done → {snapshot.path}")
    return {
        "account": account.username,
        "status": "completed",
        "path": snapshot.path,
        "snapshot": snapshot.pk,
        "generation": manifest.generation,
        "files": totals.get("files", 0),
        "bytes": totals.get("bytes", 0),
        "uploaded": totals.get("uploaded", 0),
        "databases": len(manifest.databases),
        **_notes(prepared.notes),
    }


def _failed(
    account: Account, exc: BaseException, notes: list[str], reporter: queue.Reporter
) -> dict[str, Any]:
    message, hint = message_of(exc), hint_of(exc)
    reporter.log(f"Account {account.username}: failed: {message}")
    failed: dict[str, Any] = {
        "account": account.username,
        "status": "failed",
        "error": message,
        **_notes(notes),
    }
    if hint:
        failed["hint"] = hint
    if isinstance(exc, CONNECTION_FAILURES):
        failed["unreachable"] = True
    return failed


def _notes(notes: list[str]) -> dict[str, Any]:
    return {"notes": notes} if notes else {}


class ProgressBoard:
    """Progress of the accounts running at once, summed into the item's one bar.

    The accounts' threads only write into memory (they must not touch the panel's database);
    the run's thread publishes to the Reporter a few times a second."""

    def __init__(self, reporter: queue.Reporter) -> None:
        self.reporter = reporter
        self.abort = False
        self._lock = threading.Lock()
        self._counts: dict[str, native.ProgressCounts] = {}
        self._lines: list[str] = []

    def sink(self, account: str) -> native.ProgressSink:
        return AccountProgress(self, account)

    def publish(self) -> None:
        with self._lock:
            counts = list(self._counts.values())
            lines, self._lines = self._lines, []
        for line in lines:
            self.reporter.log(line)
        if counts:
            self.reporter.update(**sum(counts, native.ProgressCounts()).as_fields())


class AccountProgress(native.ProgressSink):
    """One account's ProgressSink; safe to call from the account's thread."""

    def __init__(self, board: ProgressBoard, account: str) -> None:
        self.board = board
        self.account = account

    def report(self, counts: native.ProgressCounts) -> None:
        with self.board._lock:
            self.board._counts[self.account] = counts

    def log(self, message: str, *, level: str = "info") -> None:
        line = message if level == "info" else f"{level}: {message}"
        if not message.startswith(f"Account {self.account}:"):
            line = f"{self.account}: {line}"  # accounts run at once: say whose line it is
        with self.board._lock:
            self.board._lines.append(line)

    def abort_requested(self) -> bool:
        return self.board.abort or self.board.reporter.abort_requested()


@dataclass
class Prepared:
    account: Account
    target: Target
    databases: list[DumpSource]
    notes: list[str]


def back_up_account(
    job: BackupJob,
    account: Account,
    session: FtpSession,
    progress: Any,
    notes: list[str] | None = None,
) -> tuple[Snapshot, native.Manifest]:
    """Back up one account, start to end, in this thread; `notes` collects what the result
    should say (databases another account owns, which this one no longer backs up)."""
    prepared = prepare(job, account, session, progress, notes if notes is not None else [])
    try:
        manifest = write(job, prepared, session, progress)
    except BaseException:
        give_up(prepared)
        raise
    commit(job, prepared, manifest, session, progress)
    return prepared.target.snapshot, manifest


def prepare(
    job: BackupJob, account: Account, session: FtpSession, progress: Any, notes: list[str]
) -> Prepared:
    """Choose the slot and the databases (the panel's database and the destination)."""
    if job.include_home and not account.home:
        raise native.NativeError(f"account {account.username} has no home folder on this server")
    target = choose_target(job, account, session)
    databases: list[DumpSource] = []
    if job.include_databases:
        server = mysql.server()
        try:
            names, found_notes = mysql.account_databases(
                account.username, account.databases, Account.owners()
            )
        except BaseException:
            give_up(Prepared(account, target, [], notes))
            raise
        for note in found_notes:
            progress.log(f"Account {account.username}: {note}")
        notes.extend(found_notes)
        databases = [DumpSource(name=name, server=server) for name in names]
    return Prepared(account=account, target=target, databases=databases, notes=notes)


def write(job: BackupJob, prepared: Prepared, session: FtpSession, progress: Any) -> native.Manifest:
    """Write the backup to the destination. Runs in an account's thread: no model access."""
    snapshot = prepared.target.snapshot
    kind = "update of" if prepared.target.previous else "new"
    progress.log(f"Writing {kind} backup {snapshot.path}")
    return native.write_backup(
        session,
        account=prepared.account.username,
        backup_id=snapshot.path.rsplit("/", 1)[1],
        job_uuid=str(job.uuid),
        job_name=job.name,
        backup_type="incremental" if job.type == BackupJob.Type.INCREMENTAL else "full",
        home=Path(hostroot.host_path(prepared.account.home)) if job.include_home else None,
        excludes=list(job.excludes),
        databases=prepared.databases,
        compression=job.compression,
        progress=progress,
        previous=prepared.target.previous,
        damaged_packs=prepared.target.damaged_packs,
    )


def give_up(prepared: Prepared) -> None:
    """After a failed write: the slot's previous generation is untouched on the destination
    until a new manifest commits; it is still the oldest, so the next run finishes this slot."""
    if prepared.target.previous is not None:
        snapshot = prepared.target.snapshot
        Snapshot.objects.filter(pk=snapshot.pk, state=State.UPDATING).update(state=State.COMPLETE)


def commit(
    job: BackupJob, prepared: Prepared, manifest: native.Manifest, session: FtpSession, progress: Any
) -> None:
    catalog.record_native(prepared.target.snapshot, manifest, previous=prepared.target.previous)
    rotate(job, prepared.account, session, progress)


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
    return Target(snapshot=slot, previous=previous, damaged_packs=damaged_packs(slot))


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
    return Target(snapshot=slot, previous=previous, damaged_packs=damaged_packs(slot))


def damaged_packs(slot: Snapshot) -> frozenset[str]:
    """The slot's packs its last integrity check found missing, cut short or corrupt."""
    prefix = f"{slot.path}/packs/"
    return frozenset(
        path[len(prefix) :]
        for problem in slot.verify_problems
        if isinstance(problem, dict)
        and isinstance(path := problem.get("path"), str)
        and path.startswith(prefix)
        and not str(problem.get("problem", "")).startswith("orphan")
    )


def _forget_unfinished(unfinished: Any, session: FtpSession) -> None:
    """Full backups a failed run left half written are never restorable: remove them."""
    for snapshot in unfinished:
        with session.connection() as conn:
            native.delete_backup(conn, snapshot.path)
        snapshot.delete()


def rotate(job: BackupJob, account: Account, session: FtpSession, progress: Any) -> None:
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
