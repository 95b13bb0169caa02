"""A client in Chromium (desktop and a 390 px phone) downloads from the pages and restores
without surprises: real pure-ftpd, a real worker, real MariaDB.

- a file, a folder and a database are downloaded from the pages and the archives opened;
- "Restore selected" with nothing chosen does nothing (the buttons are disabled, and a forced
  post is refused: no queue item);
- a restore shows what it will do first; over the live database it names what it replaces,
  Cancel changes nothing (rows checked in MariaDB) and confirming restores it.
"""

from __future__ import annotations

import io
import secrets
import tarfile
from pathlib import Path
from typing import Any

import pytest

from jobs.models import Account, QueueItem, Snapshot
from tests.support.fixtures_browser import login, off_the_browser_thread
from tests.support.fixtures_jobs import make_job, run_job

pytestmark = [pytest.mark.browser, pytest.mark.peer, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
PASSWORD = "rux-pw-1234"


@pytest.fixture(params=sorted(VIEWPORTS))
def screen(request: Any, browser: Any) -> Any:
    context = browser.new_context(viewport=VIEWPORTS[request.param], accept_downloads=True)
    context.set_default_timeout(15000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def site(db: Any, tmp_path: Path, mysql_server: Any, native_destination: Any, django_user_model: Any) -> Any:
    """A client's account with a small home and a database, backed up once (files and database)."""
    client = django_user_model.objects.create_user(f"rux{secrets.token_hex(2)}", password=PASSWORD)
    username = f"rux{secrets.token_hex(3)}"
    home = tmp_path / username
    (home / "site" / "sub").mkdir(parents=True)
    (home / "site" / "a.html").write_bytes(b"<h1>a</h1>\n" * 50)
    (home / "site" / "sub" / "b.txt").write_bytes(bytes(range(256)) * 9)
    (home / "notes.txt").write_text("remember the milk\n")
    database = f"{username}_wp"
    mysql_server.query(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    mysql_server.query("CREATE TABLE posts (id INT PRIMARY KEY, title VARCHAR(100))", database=database)
    mysql_server.query(
        "INSERT INTO posts VALUES " + ",".join(f"({i}, 'post {i}')" for i in range(1, 21)), database=database
    )
    account = Account.objects.create(username=username, home=str(home), owner=client)
    job = make_job(native_destination, account, type="full", retention=2, include_databases=True)
    assert off_the_browser_thread(run_job, job).status == "completed"
    yield {
        "client": client,
        "account": account,
        "home": home,
        "database": database,
        "snapshot": Snapshot.objects.get(account=account),
    }
    for name in (database, f"{database}_restored"):
        mysql_server.query(f"DROP DATABASE IF EXISTS `{name}`")


def posts(mysql_server: Any, database: str) -> list[list[str]]:
    return mysql_server.query("SELECT id, title FROM posts ORDER BY id", database=database)


def wait_completed(page: Any) -> None:
    page.wait_for_selector('#queue-item-body[data-status="completed"], #queue-item-error', timeout=90000)
    assert page.get_attribute("#queue-item-body", "data-status") == "completed", page.inner_text(
        "#queue-item"
    )


def downloaded(page: Any, tmp_path: Path) -> dict[str, bytes | None]:
    """Waits for the prepared download, fetches it through its link and opens the archive."""
    wait_completed(page)
    with page.expect_download() as info:
        page.click("#download-link")
    target = tmp_path / f"download-{secrets.token_hex(3)}.tar.gz"
    info.value.save_as(target)
    found: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=io.BytesIO(target.read_bytes()), mode="r:gz") as tar:
        for member in tar:
            handle = tar.extractfile(member) if member.isfile() else None
            found[member.name.rstrip("/")] = handle.read() if handle is not None else None
    return found


def test_a_client_downloads_a_file_a_folder_and_a_database_from_the_pages(
    screen: Any, live_server: Any, site: dict[str, Any], worker: Any, tmp_path: Path
) -> None:
    worker(concurrency=1)
    home: Path = site["home"]
    snapshot: Snapshot = site["snapshot"]
    login(screen, live_server, site["client"].username, PASSWORD)
    screen.goto(f"{live_server.url}/backups/{snapshot.pk}/")
    screen.click("#browse-files")
    assert screen.is_disabled("#download-selected")

    screen.check('tr[data-path="notes.txt"] input[type=checkbox]')
    screen.click("#download-selected")
    assert downloaded(screen, tmp_path) == {"homedir/notes.txt": b"remember the milk\n"}

    screen.goto(f"{live_server.url}/backups/{snapshot.pk}/files/")
    screen.check('tr[data-path="site"] input[type=checkbox]')
    screen.click("#download-selected")
    folder = downloaded(screen, tmp_path)
    assert folder == {
        "homedir/site": None,
        "homedir/site/a.html": (home / "site" / "a.html").read_bytes(),
        "homedir/site/sub": None,
        "homedir/site/sub/b.txt": (home / "site" / "sub" / "b.txt").read_bytes(),
    }

    screen.goto(f"{live_server.url}/backups/{snapshot.pk}/")
    screen.check(f'tr[data-kind="databases"][data-name="{site["database"]}"] input[type=checkbox]')
    screen.click("#download-selected")
    dump = downloaded(screen, tmp_path)
    assert list(dump) == [f"databases/{site['database']}.sql"]
    sql = dump[f"databases/{site['database']}.sql"]
    assert sql is not None
    assert b"CREATE TABLE `posts`" in sql
    assert b"(20,'post 20')" in sql

    screen.goto(f"{live_server.url}/accounts/{site['account'].pk}/versions/?path=notes.txt")
    screen.click(f'tr[data-snapshot="{snapshot.pk}"] >> text=Download')
    assert downloaded(screen, tmp_path) == {"homedir/notes.txt": b"remember the milk\n"}
    assert QueueItem.objects.filter(kind=QueueItem.Kind.DOWNLOAD, status="completed").count() == 4


def test_restores_ask_first_and_nothing_chosen_does_nothing(
    screen: Any, live_server: Any, site: dict[str, Any], worker: Any, mysql_server: Any
) -> None:
    worker(concurrency=1)
    snapshot: Snapshot = site["snapshot"]
    database: str = site["database"]
    backed_up = posts(mysql_server, database)
    mysql_server.query("DELETE FROM posts WHERE id > 10", database=database)
    mysql_server.query("INSERT INTO posts VALUES (999, 'written after the backup')", database=database)
    live = posts(mysql_server, database)
    restores = QueueItem.objects.filter(kind=QueueItem.Kind.RESTORE)
    login(screen, live_server, site["client"].username, PASSWORD)
    detail = f"{live_server.url}/backups/{snapshot.pk}/"
    screen.goto(detail)
    database_box = f'tr[data-kind="databases"][data-name="{database}"] input[type=checkbox]'

    # Nothing chosen: both buttons are disabled, and a forced post is refused.
    assert screen.is_disabled("#restore-selected")
    assert screen.is_disabled("#download-selected")
    screen.check("#select-all-parts")
    assert screen.locator('input[name="parts"]:checked').count() == len(snapshot.parts)
    assert screen.is_enabled("#restore-selected")
    screen.uncheck("#select-all-parts")
    assert screen.is_disabled("#restore-selected")
    screen.check("#whole_account")
    assert screen.is_enabled("#restore-selected")
    screen.uncheck("#whole_account")
    screen.evaluate("document.getElementById('restore-selected').disabled = false")
    screen.click("#restore-selected")
    assert "Nothing is selected" in screen.inner_text("main")
    assert screen.is_disabled("#restore-selected")
    assert restores.count() == 0

    # A refused form keeps what was chosen.
    screen.check(database_box)
    screen.fill("#database_name", "not_this_account")
    screen.click("#restore-selected")
    assert f"{site['account'].username}_ followed by letters" in screen.inner_text("main")
    assert screen.is_checked(database_box)
    assert screen.input_value("#database_name") == "not_this_account"
    assert restores.count() == 0

    # The default: into a new database, said before it runs; the live database stays.
    screen.fill("#database_name", "")
    screen.click("#restore-selected")
    summary = screen.inner_text("#restore-summary")
    assert f"database {database} into {database}_restored (a new database)" in summary
    assert "It replaces nothing" in screen.inner_text("main")
    assert restores.count() == 0
    screen.click("#confirm-restore")
    wait_completed(screen)
    assert posts(mysql_server, f"{database}_restored") == backed_up
    assert posts(mysql_server, database) == live

    # Over the live database: the page names what is replaced; Cancel changes nothing.
    screen.goto(detail)
    screen.check(database_box)
    screen.select_option("#database_target", "live")
    screen.click("#restore-selected")
    assert f"database {database} over the live database {database}" in screen.inner_text("#restore-summary")
    assert f"the live database {database}" in screen.inner_text("#restore-replaces")
    screen.click("#cancel-restore")
    assert screen.url == detail
    assert restores.count() == 1
    assert posts(mysql_server, database) == live

    screen.check(database_box)
    screen.select_option("#database_target", "live")
    screen.click("#restore-selected")
    screen.click("#confirm-restore")
    wait_completed(screen)
    assert restores.count() == 2
    assert posts(mysql_server, database) == backed_up
