"""Progress in Chromium: a backup's bar on the queue page, a reindex on the destination page."""

from __future__ import annotations

import secrets
import time

import pytest

from jobs.models import Account, QueueItem, Snapshot
from tests.support.cpanel_archives import make_destination_tree
from tests.support.destinations import make_cpanel_destination, make_destination
from tests.support.fixtures_browser import login
from tests.support.fixtures_jobs import make_job
from tests.support.ftp_servers import Throttled

pytestmark = [pytest.mark.browser, pytest.mark.peer, pytest.mark.django_db(transaction=True)]


def watch_progress(page, selector: str, done: str, timeout: float = 90) -> list[int]:
    """Every distinct progress value the page shows until `done` appears."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bar = page.locator(selector).first
        if bar.count():
            value = int(bar.get_attribute("data-progress") or 0)
            if not seen or seen[-1] != value:
                seen.append(value)
        if page.locator(done).count():
            bar = page.locator(selector).first
            seen.append(int(bar.get_attribute("data-progress") or 0))
            return seen
        page.wait_for_timeout(150)
    raise AssertionError(f"not done after {timeout} s; progress seen: {seen}")


def test_the_queue_page_shows_a_backup_progress_bar_moving_to_completion(
    page, live_server, django_user_model, fault_ftp_server, redis_settings, worker, tmp_path
):
    django_user_model.objects.create_superuser("admin", password="admin-pw-123")
    server = fault_ftp_server(Throttled, read_limit=3_000_000)
    destination = make_destination(server, name="slow", ssl=False, concurrency=1)
    home = tmp_path / "home"
    home.mkdir()
    for index in range(6):
        (home / f"video{index}.mp4").write_bytes(secrets.token_bytes(5_000_000))
    account = Account.objects.create(username="vlogger", home=str(home))
    job = make_job(destination, account, type="full", retention=1)
    worker(concurrency=1)

    login(page, live_server, "admin", "admin-pw-123")
    page.goto(f"{live_server.url}/jobs/")
    page.click("text=Run now")
    page.wait_for_selector("#queue-item-body")
    seen = watch_progress(page, "#queue-item-body .progress", '#queue-item-body[data-status="completed"]')
    assert seen[-1] == 100
    assert any(0 < value < 100 for value in seen), f"the bar never moved through the middle: {seen}"
    assert seen == sorted(seen), f"the bar went backwards: {seen}"
    page.goto(f"{live_server.url}/queue/")
    row = page.locator("tr[data-status]").first
    assert row.get_attribute("data-status") == "completed"
    assert QueueItem.objects.get(job=job).status == "completed"


def test_the_destination_page_shows_a_reindex_and_the_backups_it_found(
    page, live_server, django_user_model, pure_ftpd, ftp_dir, redis_settings, worker
):
    django_user_model.objects.create_superuser("admin", password="admin-pw-123")
    root = pure_ftpd.root / ftp_dir
    made = make_destination_tree(root, accounts=2, layout="whm", size_scale=0.5)
    destination = make_cpanel_destination(pure_ftpd, ftp_dir, name="cpanel")
    worker(concurrency=1)

    login(page, live_server, "admin", "admin-pw-123")
    page.goto(f"{live_server.url}/destinations/{destination.pk}/")
    assert page.inner_text("#snapshot-count") == "0"
    page.click("#reindex-button")
    page.wait_for_selector("#reindex-progress")
    seen = watch_progress(page, "#reindex-progress .progress", '#reindex-progress[data-status="completed"]')
    assert seen[-1] == 100
    page.wait_for_selector(f'#snapshot-count:text("{len(made)}")')
    rows = page.locator("#snapshot-table tbody tr")
    assert rows.count() == len(made)
    text = page.inner_text("#snapshot-table")
    assert "user0" in text
    assert "user1" in text
    assert "orphan" in text, "accounts found only in backups are shown as orphans to assign"
    assert "incomplete" in text, "the date folder marked backup_incomplete is shown as such"
    assert Snapshot.objects.filter(destination=destination).count() == len(made)
