"""Integrity check of a destination, as queue work: which backups to check, where the results
go (each backup, the destination, the queue item) and who is told.

The checks themselves are `destinations.integrity`; this module keeps the sampling cursor
that makes successive checks read different files, so every stored byte is read over time.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.utils import timezone

from backupsite.errors import Error
from destinations import integrity
from destinations.ftp import FtpError
from destinations.models import Destination, Engine
from destinations.sessions import open_session
from jobs import catalog, queue
from jobs.models import QueueItem, Snapshot
from jobs.notify import events as notifications
from jobs.queue import Reporter

State = Snapshot.State
# A backup a running job is writing is left to it; every other state is checked.
SKIPPED_STATES = (State.WRITING, State.UPDATING)
MAX_LOGGED_PROBLEMS = 50


class ReadPercentInvalid(Error, ValueError):
    """A read_percent that is not a whole number from 0 to 100."""


def parse_read_percent(value: object) -> int:
    """`read_percent` from a request: an integer 0..100 (a JSON number, not a string or a bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReadPercentInvalid("read_percent must be an integer from 0 to 100.")
    if not 0 <= value <= 100:
        raise ReadPercentInvalid(f"read_percent must be from 0 to 100, not {value}.")
    return value


def queue_verify(destination: Destination, read_percent: int, *, requested_by: Any = None) -> QueueItem:
    """Queue an integrity check, or answer the one already pending or running."""
    read_percent = parse_read_percent(read_percent)
    return queue.enqueue_once(
        QueueItem.Kind.VERIFY,
        title=f"verify {destination.name} ({read_percent}% read)",
        destination=destination,
        requested_by=requested_by,
        params={"read_percent": read_percent},
    )


def _sample(destination: Destination, percent: int) -> integrity.Sample:
    if not destination.verify_salt:
        destination.verify_salt = secrets.token_hex(16)
        Destination.objects.filter(pk=destination.pk).update(verify_salt=destination.verify_salt)
    return integrity.Sample(
        percent, destination.verify_cursor % integrity.BUCKETS, bytes.fromhex(destination.verify_salt)
    )


def run(item: QueueItem, reporter: Reporter) -> dict[str, Any]:
    destination = Destination.for_work(item.destination_id)
    percent = parse_read_percent(item.params.get("read_percent", destination.verify_read_percent))
    sample = _sample(destination, percent)
    snapshots = list(
        Snapshot.objects.filter(destination=destination)
        .exclude(state__in=SKIPPED_STATES)
        .order_by("account_name", "path")
    )
    reporter.log(
        f"Checking {len(snapshots)} backups on {destination.name}, reading {percent}% of the stored bytes"
    )
    reporter.update(
        bytes_total=sum(s.size for s in snapshots) * percent // 100, files_total=len(snapshots), files_done=0
    )
    summary: dict[str, Any] = {
        "read_percent": percent,
        "backups": len(snapshots),
        "damaged": [],
        "orphans": [],
        "failed": [],
        "bytes_read": 0,
        "files_read": 0,
    }
    with open_session(destination) as session:
        if destination.engine == Engine.NATIVE:
            results = _check_native(session, snapshots, sample, reporter, summary)
        else:
            results = _check_cpanel(session, snapshots, sample, reporter, summary)
    for snapshot, result in results:
        _record(snapshot, result, summary, reporter)
    return _finish(destination, item, sample, summary, reporter)


def _check_native(
    session: Any,
    snapshots: list[Snapshot],
    sample: integrity.Sample,
    reporter: Reporter,
    summary: dict[str, Any],
) -> list[tuple[Snapshot, integrity.BackupResult]]:
    results = []
    for index, snapshot in enumerate(snapshots, start=1):
        reporter.check_abort()
        base = summary["bytes_read"]

        def tick(read: int, base: int = base) -> None:
            reporter.update(bytes_done=base + read)

        try:
            with session.connection() as conn:
                result = integrity.check_native_backup(
                    conn, snapshot.path, sample, tick, cached=catalog.cached_manifest(snapshot)
                )
        except FtpError as exc:
            summary["failed"].append({"path": snapshot.path, "error": exc.message})
            reporter.log(f"{snapshot.path}: could not be checked: {exc.message}")
            continue
        summary["bytes_read"] += result.bytes_read
        summary["files_read"] += result.files_read
        reporter.update(bytes_done=summary["bytes_read"], files_done=index)
        results.append((snapshot, result))
    try:
        with session.connection() as conn:
            summary["orphans"].extend(
                integrity.unknown_folders(conn, {s.path for s in snapshots} | _busy(snapshots))
            )
    except FtpError as exc:
        summary["failed"].append({"path": "", "error": exc.message})
    return results


def _busy(checked: list[Snapshot]) -> set[str]:
    """Backups being written right now are not orphans, though this check skipped them."""
    if not checked:
        return set()
    return set(
        Snapshot.objects.filter(
            destination_id=checked[0].destination_id, state__in=SKIPPED_STATES
        ).values_list("path", flat=True)
    )


def _check_cpanel(
    session: Any,
    snapshots: list[Snapshot],
    sample: integrity.Sample,
    reporter: Reporter,
    summary: dict[str, Any],
) -> list[tuple[Snapshot, integrity.BackupResult]]:
    archives = [
        integrity.CpanelArchive(
            path=s.path,
            pieces=[p for p in s.meta.get("pieces", []) if isinstance(p, str)] or [s.path],
            size=s.remote_size,
            mtime=s.remote_mtime,
        )
        for s in snapshots
    ]

    def tick(read: int) -> None:
        reporter.update(bytes_done=summary["bytes_read"] + read)

    with session.connection() as conn:
        found = integrity.check_cpanel_archives(conn, archives, sample, tick)
    for result in found:
        summary["bytes_read"] += result.bytes_read
        summary["files_read"] += result.files_read
    return list(zip(snapshots, found, strict=True))


def _record(
    snapshot: Snapshot, result: integrity.BackupResult, summary: dict[str, Any], reporter: Reporter
) -> None:
    # A backup run that took the slot during the check changes what lies there: what this
    # check saw (packs deleted after the new commit, new packs) says nothing about it.
    recorded = (
        Snapshot.objects.filter(pk=snapshot.pk, generation=snapshot.generation)
        .exclude(state__in=SKIPPED_STATES)
        .update(verified_at=timezone.now(), verify_problems=result.problems)
    )
    if not recorded:
        reporter.log(f"{snapshot.path}: changed during the check (a backup run); not recorded")
        return
    snapshot.verify_problems = result.problems
    if snapshot.damaged:
        summary["damaged"].append(
            {"snapshot": snapshot.pk, "path": snapshot.path, "problems": result.problems}
        )
    for problem in result.problems[:MAX_LOGGED_PROBLEMS]:
        reporter.log(f"{problem['path']}: {problem['problem']}")


def _finish(
    destination: Destination,
    item: QueueItem,
    sample: integrity.Sample,
    summary: dict[str, Any],
    reporter: Reporter,
) -> dict[str, Any]:
    damaged, orphans, failed = summary["damaged"], summary["orphans"], summary["failed"]
    for orphan in orphans[:MAX_LOGGED_PROBLEMS]:
        reporter.log(f"{orphan['path']}: {orphan['problem']}")
    summary["ok"] = not damaged and not failed
    verdict = {
        "ok": summary["ok"],
        "backups": summary["backups"],
        "damaged": len(damaged),
        "orphans": len(orphans)
        + sum(1 for d in damaged for p in d["problems"] if p["problem"].startswith("orphan")),
        "failed": len(failed),
        "read_percent": summary["read_percent"],
        "bytes_read": summary["bytes_read"],
        "queue_item": item.pk,
    }
    Destination.objects.filter(pk=destination.pk).update(
        verified_at=timezone.now(),
        verify_result=verdict,
        verify_cursor=(sample.cursor + sample.percent) % integrity.BUCKETS,
    )
    reporter.log(
        f"Done: {summary['backups']} backups checked, {len(damaged)} damaged, {len(orphans)} orphan folders, "
        f"{summary['bytes_read']} bytes read"
    )
    if damaged:
        notifications.notify(
            "integrity_problem",
            title=f"Integrity problem: {len(damaged)} damaged backups on {destination.name}",
            details=[f"{p['path']}: {p['problem']}" for d in damaged for p in d["problems"]][:20],
            item=item,
            key=f"destination:{destination.pk}",
        )
    if damaged or failed:
        summary["status"] = "partial"
        parts = [f"{len(damaged)} backups damaged"] if damaged else []
        parts += [f"{len(failed)} could not be checked"] if failed else []
        summary["error"] = ", ".join(parts)
    return summary
