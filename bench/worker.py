"""One measured operation in a fresh interpreter, as a Celery worker would run it.

    worker.py backup JOB_ID              run one backup of the job through the queue
    worker.py reindex DESTINATION_ID     run one reindex of the destination through the queue
    worker.py read-archive JSON          index one cPanel archive streamed from FTP
    worker.py listing-build JSON         build file listings of a synthetic home (bench/listing_tree.py)
    worker.py listing-browse JSON        time browsing folders of those listings

The environment (BACKUPSITE_DATA_DIR, REDIS_URL, ...) comes from the caller. The last line of
stdout is one JSON object: wall and CPU seconds of the operation itself (start-up left out),
peak RSS of this process, peak temporary space, FTP data connections counted in the seam.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import json
import os
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PeakSampler, measured


class SeamCounters:
    """Counts what goes through destinations.ftp: logins and data connections by command."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.logins = 0
        self.data_connections: collections.Counter[str] = collections.Counter()

    def install(self) -> None:
        from destinations.ftp.control import _Control

        counters = self
        open_data = _Control.open_data
        open_session = _Control.open

        async def counted_open_data(self: Any, command: str, *, offset: int = 0) -> Any:
            with counters.lock:
                counters.data_connections[command.split()[0].upper()] += 1
            return await open_data(self, command, offset=offset)

        async def counted_open(self: Any, directory: str, *, create_root: bool) -> None:
            with counters.lock:
                counters.logins += 1
            await open_session(self, directory, create_root=create_root)

        _Control.open_data = counted_open_data  # type: ignore[method-assign]
        _Control.open = counted_open  # type: ignore[method-assign]

    def report(self) -> dict[str, Any]:
        return {
            "logins": self.logins,
            "data_connections": sum(self.data_connections.values()),
            "data_connections_by_command": dict(self.data_connections),
        }


@contextlib.contextmanager
def profiled() -> Iterator[None]:
    """With BENCH_PYINSTRUMENT=FILE, write a pyinstrument report of the operation to FILE
    (pyinstrument is not a project dependency: pip install it into the venv to use this)."""
    target = os.environ.get("BENCH_PYINSTRUMENT")
    if not target:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        Path(target).write_text(profiler.output_text(unicode=False, show_all=False))


def _setup() -> None:
    """Django, plus what a running Celery worker has imported before its first task (its
    tasks modules, the redis client of its broker): first imports are not the operation."""
    import django

    Path(tempfile.gettempdir()).mkdir(parents=True, exist_ok=True)
    django.setup()
    for module in (
        "redis",
        "destinations.ftp.leases",
        "jobs.reindex.sync",
        "jobs.backup.tasks",
        "jobs.restore.tasks",
    ):
        importlib.import_module(module)


def _run_queue_item(kind: str, **fields: Any) -> dict[str, Any]:
    from django.conf import settings

    from jobs import queue
    from jobs.backup import cycle as backup
    from jobs.models import QueueItem

    counters = SeamCounters()
    counters.install()
    Path(settings.TEMP_DIR).mkdir(parents=True, exist_ok=True)
    item = queue.enqueue(kind, dispatch=False, **fields)
    if kind == QueueItem.Kind.BACKUP:
        from jobs.backup.cycle import run as body

        if backup.take_job(item.pk) is not True:
            raise RuntimeError("the job is held by another run")
    else:
        from jobs.reindex.sync import run as body
    sampler = PeakSampler([Path(settings.TEMP_DIR), Path(tempfile.gettempdir())])
    sampler.start()
    try:
        with profiled(), measured() as numbers:
            queue.run_item(item.pk, kind, body)
    finally:
        sampler.stop()
    item.refresh_from_db()
    ok = item.status == QueueItem.Status.COMPLETED
    return {
        "ok": ok,
        "error": item.error,
        **numbers,
        "peak_temp_bytes": sampler.peak_bytes,
        "peak_rss_mb_sampled": sampler.peak_rss / 2**20,
        "result": item.result,
        "log_tail": list(item.log)[-8:],
        **counters.report(),
    }


def backup(job_id: int) -> dict[str, Any]:
    from jobs.models import BackupJob, QueueItem

    job = BackupJob.objects.select_related("destination").get(pk=job_id)
    return _run_queue_item(QueueItem.Kind.BACKUP, title=job.name, job=job, destination=job.destination)


def reindex(destination_id: int) -> dict[str, Any]:
    from destinations.models import Destination
    from jobs.models import QueueItem

    destination = Destination.objects.get(pk=destination_id)
    return _run_queue_item(
        QueueItem.Kind.REINDEX, title=f"reindex {destination.name}", destination=destination
    )


def read_archive(spec: dict[str, Any]) -> dict[str, Any]:
    """What reindex does for one archive: RETR through the seam, prefetched, into read_archive."""
    from destinations.formats.cpanel import read_archive as index_archive
    from destinations.formats.cpanel.tarsafe import IterStream
    from destinations.ftp import FtpConnection, FtpSettings
    from destinations.streams import prefetch

    counters = SeamCounters()
    counters.install()
    settings = FtpSettings(
        host="127.0.0.1",
        port=spec["port"],
        username=spec["user"],
        password=spec["password"],
        directory=spec.get("directory", ""),
        ssl=bool(spec.get("ssl")),
        tls_fingerprint=spec.get("fingerprint", ""),
        timeout=60,
    )
    with measured() as numbers, FtpConnection(settings) as conn:
        stream = IterStream(prefetch(conn.download(spec["path"])))
        index = index_archive(stream, account_hint=spec.get("account"))
    return {
        "ok": bool(index.complete),
        "error": "" if index.complete else f"incomplete: {sorted(index.flags)}",
        **numbers,
        "members": index.member_count,
        "home_entries": len(index.home_entries),
        "total_size": index.total_size,
        "account": index.account,
        **counters.report(),
    }


def main() -> None:
    command, argument = sys.argv[1], sys.argv[2]
    try:
        _setup()
        if command == "backup":
            report = backup(int(argument))
        elif command == "reindex":
            report = reindex(int(argument))
        elif command == "read-archive":
            report = read_archive(json.loads(argument))
        elif command == "listing-build":
            from bench.listing_tree import build_backups

            report = build_backups(json.loads(argument))
        elif command == "listing-browse":
            from bench.listing_tree import browse

            report = browse(json.loads(argument))
        else:
            raise SystemExit(f"unknown command {command!r}")
    except Exception as exc:
        report = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    print(json.dumps(report, default=str), flush=True)
    os._exit(0)  # skip interpreter teardown (daemon threads, atexit): the numbers are out


if __name__ == "__main__":
    main()
