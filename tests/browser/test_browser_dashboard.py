"""The dashboard in Chromium: an account backed up to the real pure-ftpd is fine; after a run
that fails for real (its home folder is gone), the dashboard shows it in red with the run
linked, also at a phone's width."""

from __future__ import annotations

import secrets

import pytest

from jobs.models import Account
from tests.support.fixtures_browser import login, off_the_browser_thread
from tests.support.fixtures_jobs import make_job, run_job
from tests.support.homes import make_home

pytestmark = [pytest.mark.browser, pytest.mark.peer, pytest.mark.django_db(transaction=True)]


def test_the_dashboard_shows_an_account_in_red_after_its_backup_failed(
    page, live_server, django_user_model, native_destination, tmp_path
):
    django_user_model.objects.create_superuser("dashroot", password="dashroot-pw-1234", email="")
    username = f"dash{secrets.token_hex(3)}"
    home = make_home(tmp_path / username)
    account = Account.objects.create(username=username, home=str(home))
    job = make_job(native_destination, account, type="full", retention=2, schedule="0 2 * * *")
    assert off_the_browser_thread(run_job, job).status == "completed"

    login(page, live_server, "dashroot", "dashroot-pw-1234")
    assert page.url == f"{live_server.url}/"
    assert page.locator(f'#at-risk tr[data-account="{username}"]').count() == 0
    assert "1 scheduled account backed up in time; 0 at risk" in page.inner_text("#at-risk")

    home.rename(tmp_path / f"{username}-gone")  # the next run cannot read the home folder
    failed = off_the_browser_thread(run_job, job)
    assert failed.status == "failed"

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    row = page.locator(f'#at-risk tr[data-account="{username}"]')
    assert row.get_attribute("data-problem") == "failed"
    assert "the last run failed" in row.inner_text()
    red, green, blue = (
        int(c)
        for c in row.locator("td")
        .first.evaluate("e => getComputedStyle(e).backgroundColor")[4:-1]
        .split(",")[:3]
    )
    assert red > max(green, blue) + 20, "the row is not red"
    row.locator(f'a[href="/queue/{failed.pk}/"]').click()
    assert page.url.endswith(f"/queue/{failed.pk}/")
    page.go_back()
    # The failure is listed too, and nothing on the page is wider than the phone.
    assert page.locator(f'#failures tr[data-item="{failed.pk}"]').is_visible()
    overflow = page.evaluate(
        "() => [...document.querySelectorAll('main section')].filter(s => s.scrollWidth > s.clientWidth + 1).length"
    )
    assert overflow == 0
    assert page.evaluate("() => document.querySelector('main').getBoundingClientRect().right") <= 390
