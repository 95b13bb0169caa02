"""Backups through real Celery workers: no overlapping runs of a job, a killed worker, the cap."""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from destinations.models import Destination
from jobs import queue
from jobs.backup import cycle as backup
from jobs.models import Account, BackupJob, QueueItem, Snapshot
from tests.support.destinations import make_destination
from tests.support.fixtures_jobs import make_job, run_job
from tests.support.ftp_servers import Throttled

pytestmark = [pytest.mark.peer, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def small_home(root: Path, files: int = 20, random_bytes: int = 0) -> Path:
    root.mkdir(parents=True)
    for index in range(files):
        (root / f"file{index}.txt").write_text(f"content {index}\n" * 50)
    if random_bytes:
        (root / "random.bin").write_bytes(secrets.token_bytes(random_bytes))
    return root


def destination_for(server, **fields) -> Destination:
    return make_destination(
        server,
        fields.pop("directory", ""),
        name=f"dest-{secrets.token_hex(3)}",
        ssl=False,
        timeout=10,
        retries=2,
        concurrency=fields.pop("concurrency", 2),
        **fields,
    )


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_twenty_runs_of_ten_jobs_queued_at_once_all_finish_without_overlap(
    worker, pure_ftpd, ftp_dir, tmp_path
):
    destination = destination_for(pure_ftpd, directory=ftp_dir, concurrency=4)
    jobs = []
    for index in range(10):
        account = Account.objects.create(
            username=f"w{index}{secrets.token_hex(2)}", home=str(small_home(tmp_path / f"home{index}"))
        )
        jobs.append(make_job(destination, account, type="incremental", retention=2))
    items = [backup.queue_run(job) for job in jobs for _ in range(2)]
    worker(concurrency=3)
    wait_for(
        lambda: (
            QueueItem.objects.filter(pk__in=[i.pk for i in items], status__in=QueueItem.FINISHED).count()
            == 20
        ),
        timeout=180,
        what="20 backup runs to finish",
    )
    finished = list(QueueItem.objects.filter(pk__in=[i.pk for i in items]))
    assert {item.status for item in finished} == {QueueItem.Status.COMPLETED}, [
        (item.pk, item.status, item.error) for item in finished
    ]
    for job in jobs:
        runs = sorted((i.started, i.finished) for i in finished if i.job_id == job.pk)
        assert len(runs) == 2
        assert runs[0][1] <= runs[1][0], f"two runs of {job.name} overlapped: {runs}"
        assert Snapshot.objects.filter(job_uuid=job.uuid, state=Snapshot.State.COMPLETE).count() == 2
    assert not QueueItem.objects.filter(lock__isnull=False).exists(), "every run let its job's lock go"


def test_a_killed_worker_leaves_a_stale_item_marked_failed_and_the_next_run_completes(
    worker, fault_ftp_server, tmp_path
):
    server = fault_ftp_server(Throttled, read_limit=500_000)
    destination = destination_for(server, concurrency=1)
    account = Account.objects.create(
        username=f"k{secrets.token_hex(3)}", home=str(small_home(tmp_path / "home", random_bytes=6_000_000))
    )
    job = make_job(destination, account, type="incremental", retention=2)
    item = backup.queue_run(job)
    proc = worker(concurrency=1)
    wait_for(
        lambda: QueueItem.objects.filter(pk=item.pk, status="running").exists(),
        timeout=60,
        what="the run to start",
    )
    time.sleep(3)  # well into the 12 s upload
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    item.refresh_from_db()
    assert item.status == QueueItem.Status.RUNNING, "nothing marks it yet: its worker just vanished"
    assert queue.reap_stale() == 0, "a fresh heartbeat is not stale"
    assert queue.reap_stale(now=timezone.now() + queue.STALE_AFTER + timedelta(seconds=1)) == 1
    item.refresh_from_db()
    assert item.status == QueueItem.Status.FAILED
    assert "stopped responding" in item.error
    job.refresh_from_db()
    assert job.running is None, "the job is free for its next run"
    half = Snapshot.objects.get(job_uuid=job.uuid)
    assert not half.restorable, "a half-written backup is never offered"
    server.options["read_limit"] = 0
    server.handler_mixin = None
    done = run_job(job)
    assert done.status == QueueItem.Status.COMPLETED, done.error
    finished = Snapshot.objects.get(job_uuid=job.uuid)
    assert finished.path == half.path, "the next run finishes the slot the killed run left"
    assert finished.restorable


def test_the_connection_cap_holds_with_two_jobs_running_at_once(fault_ftp_server, tmp_path, redis_settings):
    server = fault_ftp_server(Throttled, read_limit=3_000_000)
    destination = destination_for(server, concurrency=2)
    jobs = []
    for index in range(2):
        account = Account.objects.create(
            username=f"c{index}{secrets.token_hex(2)}",
            home=str(small_home(tmp_path / f"home{index}", files=5, random_bytes=20_000_000)),
        )
        jobs.append(make_job(destination, account, type="full", retention=1))
    results: dict[int, QueueItem] = {}

    def run(job: BackupJob) -> None:
        from django.db import connection

        try:
            results[job.pk] = run_job(job)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(results[job.pk].status == QueueItem.Status.COMPLETED for job in jobs), [
        (r.status, r.error) for r in results.values()
    ]
    assert server.state.max_concurrent <= 2, f"{server.state.max_concurrent} connections at once"
    assert server.state.connections >= 2
