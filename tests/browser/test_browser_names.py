"""A client in Chromium browses a folder whose name is not UTF-8 and selects a file in it."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from jobs.models import Account, QueueItem
from tests.destinations.test_names import FOLDER, LATIN1, TREE, b64, exact_tree, write_tree
from tests.support.fixtures_browser import login, off_the_browser_thread
from tests.support.fixtures_restore import HOME_OWNER, chown_tree, make_native_backup

pytest_plugins = ["tests.support.fixtures_restore"]
pytestmark = [pytest.mark.browser, pytest.mark.peer, pytest.mark.django_db(transaction=True)]


def test_a_folder_whose_name_is_not_utf8_browses_in_chromium(
    page, live_server, django_user_model, restore_native_destination, worker, tmp_path: Path
) -> None:
    """
    GIVEN a backup whose home holds `archiv-\\xe4` (Latin-1) beside a folder named with those
          eleven characters literally
    WHEN the client opens the Latin-1 folder, goes into its sub-folder and back by the
         breadcrumb, and restores the Latin-1 file into a new folder
    THEN every page shows the names with their bytes marked, the folder holds its own files
         (not the look-alike's), and the file comes back under its exact bytes
    """
    client = django_user_model.objects.create_user("nm-browser", password="nm-browser-pw-1")
    home = tmp_path / "homes" / f"nm{secrets.token_hex(3)}"
    home.mkdir(parents=True)
    write_tree(home, TREE)
    chown_tree(home, HOME_OWNER)
    account = Account.objects.create(username=home.name, home=str(home), owner=client)
    snapshot = off_the_browser_thread(make_native_backup, restore_native_destination, account).snapshot

    login(page, live_server, "nm-browser", "nm-browser-pw-1")
    page.goto(f"{live_server.url}/backups/{snapshot.pk}/files/")
    folders = page.locator("#file-table a", has_text="archiv-")
    assert folders.count() == 2
    assert folders.nth(0).inner_text() == folders.nth(1).inner_text() == "archiv-\\xe4"
    page.locator("#file-table a:has(.raw-byte)").click()
    page.wait_for_load_state("networkidle")
    assert f"path_b64={b64(FOLDER)}" in page.url
    names = page.locator("#file-table tbody tr td:nth-child(2)").all_inner_texts()
    assert "caf\\xe9.txt" in [name.strip() for name in names]
    assert not any("other.txt" in name for name in names)  # the look-alike's file
    assert page.locator("#file-table .raw-byte").count() >= 4  # caf\xe9, bad-\xc3(-\xff, sub-\xff, link-\xe9

    page.locator("#file-table a", has_text="sub-").click()
    page.wait_for_load_state("networkidle")
    assert page.locator('tr[data-path="archiv-\\\\xe4/sub-\\\\xff/deep.txt"]').count() == 1
    page.locator(".breadcrumb a", has_text="archiv-").click()
    page.wait_for_load_state("networkidle")
    assert f"path_b64={b64(FOLDER)}" in page.url

    latin1 = page.locator('#file-table tr[data-type="file"]', has=page.locator(".raw-byte")).filter(
        has_text="caf"
    )
    raw_boxes = page.locator('#file-table input[name="paths_b64"]')
    assert raw_boxes.count() == 5  # every path in this folder: the folder's own name is not UTF-8
    page.check("#select-all-paths")  # selects the paths_b64 boxes too
    assert all(raw_boxes.nth(n).is_checked() for n in range(5))
    page.uncheck("#select-all-paths")
    assert not any(raw_boxes.nth(n).is_checked() for n in range(5))
    latin1.locator("input[type=checkbox]").check()
    worker(concurrency=1)
    page.click("#restore-selected")  # enabled by ticking a paths_b64 box alone (restore.js)
    assert "archiv-\\xe4/caf\\xe9.txt" in page.inner_text("#restore-summary")
    page.click("#confirm-restore")
    page.wait_for_selector('#queue-item-body[data-status="completed"]', timeout=60000)
    item = QueueItem.objects.get(kind=QueueItem.Kind.RESTORE)
    assert item.params["paths_b64"] == [b64(FOLDER + b"/" + LATIN1)]
    restored = Path(page.inner_text("#queue-item-result code"))
    assert restored.parent == home
    assert exact_tree(restored) == {FOLDER: None, FOLDER + b"/" + LATIN1: TREE[FOLDER + b"/" + LATIN1]}
