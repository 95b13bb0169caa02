"""A client in Chromium: logs in, browses a backup, restores one file into a new folder,
watches the progress bar complete, and the file is there; another client cannot see it."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from jobs.models import Account, Snapshot
from tests.support.fixtures_browser import login, off_the_browser_thread
from tests.support.fixtures_jobs import make_job, run_job

pytestmark = [pytest.mark.browser, pytest.mark.peer, pytest.mark.django_db(transaction=True)]


def test_a_client_restores_one_file_into_a_new_folder_and_another_client_cannot_see_it(
    page, live_server, django_user_model, native_destination, worker, tmp_path
):
    alice = django_user_model.objects.create_user("alice", password="alice-pw-1234")
    django_user_model.objects.create_user("bob", password="bob-pw-1234")
    home = tmp_path / "alicesite"
    (home / "public_html" / "blog").mkdir(parents=True)
    wanted = home / "public_html" / "blog" / "post.html"
    wanted.write_text("<h1>My first post</h1>\n")
    (home / "public_html" / "index.html").write_text("<h1>home</h1>\n")
    account = Account.objects.create(username=f"a{secrets.token_hex(3)}", home=str(home), owner=alice)
    job = make_job(native_destination, account, type="full", retention=2)
    assert off_the_browser_thread(run_job, job).status == "completed"
    snapshot = Snapshot.objects.get(account=account)
    wanted.write_text("overwritten by mistake\n")  # what the client wants undone
    worker(concurrency=1)

    login(page, live_server, "alice", "alice-pw-1234")
    assert page.url.endswith("/mine/")
    page.click(f'[data-account="{account.username}"] >> text=Browse backups')
    page.click(f'[data-snapshot="{snapshot.pk}"] >> text=Files')
    page.click("text=public_html")
    page.click("text=blog")
    row = page.locator('tr[data-path="public_html/blog/post.html"]')
    assert "23 B" in row.inner_text()
    row.locator("input[type=checkbox]").check()
    assert page.input_value("#target") == "new_folder"
    page.click("#restore-selected")
    assert "1 file (public_html/blog/post.html) into a new folder" in page.inner_text("#restore-summary")
    page.click("#confirm-restore")
    page.wait_for_selector('#queue-item-body[data-status="completed"]', timeout=60000)
    assert page.locator(".progress").first.get_attribute("data-progress") == "100"
    target = page.inner_text("#queue-item-result code")
    restored = Path(target) / "public_html" / "blog" / "post.html"
    assert restored.read_text() == "<h1>My first post</h1>\n"
    assert Path(target).parent == home
    assert Path(target).name.startswith("restore-")
    assert wanted.read_text() == "overwritten by mistake\n", "a new folder never overwrites"

    page.click("text=Log out")
    login(page, live_server, "bob", "bob-pw-1234")
    assert account.username not in page.content()
    for url in (f"/backups/{snapshot.pk}/", f"/backups/{snapshot.pk}/files/", f"/accounts/{account.pk}/"):
        response = page.goto(f"{live_server.url}{url}")
        assert response.status == 404, url
