"""In Chromium: "Find accounts" on the accounts page finds the accounts of the server (a
simulated cPanel host under BACKUPSITE_HOST_ROOT, read by a real Celery worker)."""

from __future__ import annotations

import secrets

import pytest

from jobs.models import Account
from tests.support.fixtures_browser import login
from tests.support.host_trees import cpanel_host

pytestmark = [pytest.mark.browser, pytest.mark.peer, pytest.mark.django_db(transaction=True)]


def test_find_accounts_lists_the_discovered_accounts(
    page, live_server, django_user_model, redis_settings, worker, tmp_path, settings, monkeypatch
):
    """GIVEN a cPanel server tree and an empty accounts page WHEN the admin clicks "Find
    accounts" THEN the discovery's queue item completes and says what it found and skipped,
    and the accounts page lists the accounts with their reseller, domain and suspension."""
    p = f"b{secrets.token_hex(2)}"
    root = tmp_path / "host"
    cpanel_host(root, p)
    monkeypatch.setenv("BACKUPSITE_HOST_ROOT", str(root))  # the worker's environment
    settings.HOST_ROOT = str(root)
    django_user_model.objects.create_superuser("admin", password="admin-pw-123")
    worker(concurrency=1)

    login(page, live_server, "admin", "admin-pw-123")
    page.goto(f"{live_server.url}/accounts/")
    assert "No accounts yet" in page.inner_text("#accounts")
    page.click("#find-accounts")
    page.wait_for_selector('#queue-item-body[data-status="completed"]', timeout=60000)
    summary = page.inner_text("#discovery-result")
    assert "24 accounts on this cPanel server: 24 new" in summary
    assert "not a safe account name" in page.inner_text("#queue-item-result")

    page.goto(f"{live_server.url}/accounts/")
    rows = page.locator("#accounts tbody tr")
    assert rows.count() == 24 == Account.objects.count()
    shop = page.locator(f'#accounts tr[data-username="{p}shop"]')
    assert f"{p}res1" in shop.inner_text()
    assert f"{p}shop.example" in shop.inner_text()
    assert "cPanel" in shop.inner_text()
    assert "suspended" in page.locator(f'#accounts tr[data-username="{p}sus"]').inner_text()
    assert not page.locator(f'#accounts tr[data-username="{p}outside"]').count()
