"""The destination page in Chromium: Verify, watch the check run on a worker, and see the
damaged backup flagged on the page and on the backup's own page."""

from __future__ import annotations

import os

import pytest

from destinations.models import Destination
from jobs import queue
from jobs.models import QueueItem, Snapshot
from jobs.reindex import sync as reindex
from tests.support.cpanel_archives import make_account_archive
from tests.support.destinations import make_cpanel_destination
from tests.support.fixtures_browser import login, off_the_browser_thread

pytestmark = [pytest.mark.browser, pytest.mark.peer, pytest.mark.django_db(transaction=True)]


def _reindex(destination: Destination) -> None:
    item = reindex.queue_reindex(destination)
    queue.run_item(item.pk, QueueItem.Kind.REINDEX, reindex.run)


def test_admin_verifies_a_destination_from_its_page_and_sees_the_damaged_backup_flagged(
    page, live_server, django_user_model, pure_ftpd, ftp_dir, redis_settings, worker
):
    django_user_model.objects.create_superuser("admin", password="admin-pw-123")
    folder = pure_ftpd.root / ftp_dir / "2025-07-02" / "accounts"
    folder.mkdir(parents=True)
    archives = [
        make_account_archive(folder / f"bvfy{n}.tar.gz", f"bvfy{n}", seed=n, size_scale=0.2) for n in range(2)
    ]
    destination = make_cpanel_destination(pure_ftpd, ftp_dir)
    off_the_browser_thread(_reindex, destination)
    damaged = archives[0].path
    stat = damaged.stat()
    with open(damaged, "r+b") as handle:  # one flipped byte inside the gzip stream, same size and time
        handle.seek(stat.st_size // 2)
        byte = handle.read(1)
        handle.seek(stat.st_size // 2)
        handle.write(bytes([byte[0] ^ 0x10]))
    os.utime(damaged, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    worker(concurrency=1)

    login(page, live_server, "admin", "admin-pw-123")
    page.goto(f"{live_server.url}/destinations/{destination.pk}/")
    assert "never run" in page.inner_text("#verify-last")
    assert page.locator(".damaged-badge").count() == 0
    page.fill("#verify-percent", "100")
    page.click("#verify-button")
    page.wait_for_selector('#verify-progress[data-status="partial"]', timeout=90_000)
    assert "1 damaged" in page.inner_text("#verify-last")
    bad = Snapshot.objects.get(destination=destination, path__endswith=damaged.name)
    row = page.locator(f'tr[data-snapshot="{bad.pk}"]')
    assert row.locator(".damaged-badge").count() == 1
    assert page.locator(".damaged-badge").count() == 1, "the intact archive is not flagged"
    item = QueueItem.objects.get(kind=QueueItem.Kind.VERIFY, destination=destination)
    assert item.params == {"read_percent": 100}

    row.locator("a").first.click()
    page.wait_for_selector("#damaged-alert")
    assert "does not read to the end" in page.inner_text("#damaged-alert")
