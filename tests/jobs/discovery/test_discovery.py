"""Account discovery against simulated cPanel and plain Linux servers under BACKUPSITE_HOST_ROOT.

The cPanel tree holds 24 good accounts of two resellers and root (one suspended, homes on
/home and /home2, database maps whose names collide by prefix) and the damage a server can
hold: a home outside /home, a user file that names another account, non-UTF-8 bytes, unsafe
names, a symlink out of the root, a huge file, broken passwd lines. The grants fallback runs
against the real MariaDB.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from jobs import queue, schedules
from jobs.backup import removed
from jobs.discovery import accounts as discovery
from jobs.models import Account, QueueItem
from tests.support.host_trees import cpanel_host, plain_host

pytestmark = pytest.mark.django_db


@pytest.fixture
def p() -> str:
    """A prefix unique to this run, so that databases on the shared MariaDB never collide."""
    return f"d{secrets.token_hex(2)}"


@pytest.fixture
def cpanel(tmp_path, settings, p):
    settings.HOST_ROOT = str(tmp_path / "host")
    return cpanel_host(tmp_path / "host", p)


@pytest.fixture
def plain(tmp_path, settings, p):
    settings.HOST_ROOT = str(tmp_path / "host")
    return plain_host(tmp_path / "host", p)


@pytest.fixture
def grants(mysql_server, p):
    """The map-less account `{p}broken` has a database and a database user on MariaDB; an
    account named `{p}broke` does not exist, so `{p}broke_x` is nobody's."""
    names = [f"{p}broken_wp", f"{p}broken_shop", f"{p}broke_x"]
    for name in names:
        mysql_server.query(f"CREATE DATABASE `{name}`")
    mysql_server.query(f"CREATE USER '{p}broken_ro'@'localhost' IDENTIFIED BY 'x{secrets.token_hex(8)}'")
    yield
    for name in names:
        mysql_server.query(f"DROP DATABASE IF EXISTS `{name}`")
    mysql_server.query(f"DROP USER IF EXISTS '{p}broken_ro'@'localhost'")


def _problems(found: discovery.Scan, needle: str) -> list[str]:
    return [problem for problem in found.problems if needle in problem]


def test_cpanel_discovery_finds_exactly_the_accounts_fields_and_databases(cpanel, grants, p):
    """GIVEN a cPanel server tree with 24 good accounts and every kind of damage
    WHEN discovery runs
    THEN exactly the 24 accounts exist, with reseller, domains, plan, suspension, home as the
    server names it and the databases the ownership rule gives them; every bad file is reported
    and none of them became an account."""
    found, summary = discovery.discover()

    expected = {f"{p}u{i:02d}" for i in range(18)} | {
        f"{p}{name}" for name in ("res1", "res2", "shop", "shop_x", "sus", "broken")
    }
    assert found.kind == "cpanel"
    assert set(Account.objects.values_list("username", flat=True)) == expected
    assert sorted(summary.added) == sorted(expected)
    assert set(Account.objects.values_list("source", flat=True)) == {"cpanel"}

    u01 = Account.objects.get(username=f"{p}u01")
    assert (u01.home, u01.reseller, u01.domains, u01.plan, u01.suspended) == (
        f"/home/{p}u01",
        "root",
        [f"{p}u01.example"],
        "default",
        False,
    )
    assert Account.objects.get(username=f"{p}u02").home == f"/home2/{p}u02"
    assert Account.objects.get(username=f"{p}u07").reseller == f"{p}res1"
    assert Account.objects.filter(reseller=f"{p}res2").count() == 8  # 6 + res2 itself + sus
    sus = Account.objects.get(username=f"{p}sus")
    assert (sus.suspended, sus.plan) == (True, "bronze")

    shop = Account.objects.get(username=f"{p}shop")
    assert shop.domains == [f"{p}shop.example", f"www2.{p}shop.example", f"{p}parked.example"]
    # The map wins (legacydb has no prefix), but the longest prefix still decides: shop_x_* is
    # account shop_x's even in shop's map; cPanel's session users are not the account's.
    assert shop.databases == sorted([f"{p}shop_wp", "legacydb"])
    assert shop.database_users == [f"{p}shop_wp"]
    shop_x = Account.objects.get(username=f"{p}shop_x")
    assert shop_x.databases == sorted([f"{p}shop_x_blog", f"{p}shop_x_lost"])
    assert shop_x.database_users == [f"{p}shop_x_admin"]
    # No map (it is not JSON): the database server's databases and users, by the same rule.
    broken = Account.objects.get(username=f"{p}broken")
    assert broken.databases == sorted([f"{p}broken_shop", f"{p}broken_wp"])
    assert broken.database_users == [f"{p}broken_ro"]
    assert Account.objects.get(username=f"{p}u03").databases == []

    for needle in (
        f"{p}shop_x_lost belongs to account {p}shop_x",
        f"database user {p}shop_x_admin belongs to account {p}shop_x",
        "'bad name;' is not a valid name",
        "'bad domain!' is not a domain name",
        f"/var/cpanel/databases/{p}broken.json: not JSON",
        f"home '/var/www/{p}outside' is outside the allowed home roots",
        f"/var/cpanel/users/{p}liar: USER='{p}u00' does not name this file's account",
        f"/var/cpanel/users/{p}garbled: not UTF-8",
        "/var/cpanel/users/Bad.Name: not a safe account name",
        "/var/cpanel/users/x;rm -rf: not a safe account name",
        f"/var/cpanel/users/{p}huge: larger than",
        f"/var/cpanel/users/{p}nopasswd: no passwd entry",
        f"/var/cpanel/users/{p}linkout: a symlink that leads out of the server's root",
        "/etc/passwd line",
        "/etc/trueuserowners line",
    ):
        assert _problems(found, needle), (needle, found.problems)
    assert not Account.objects.filter(username__in=[f"{p}plainuser", f"{p}outside", "secret"]).exists()


def test_plain_linux_discovery_takes_login_users_with_a_home_under_home(plain, p):
    """GIVEN a server without cPanel WHEN discovery runs THEN accounts are the passwd users
    with uid >= 1000, a login shell and a home under /home*; system users are left out quietly,
    bad entries (unsafe name, '..' in the home, a symlink out of the root) are reported."""
    found, _ = discovery.discover(server=NoDatabases())

    expected = {f"{p}h{i:02d}" for i in range(20)} | {f"{p}second", f"{p}zsh"}
    assert found.kind == "system"
    assert set(Account.objects.values_list("username", flat=True)) == expected
    assert Account.objects.get(username=f"{p}second").home == f"/home2/{p}second"
    assert set(Account.objects.values_list("source", flat=True)) == {"system"}
    assert _problems(found, "'Eve'")
    assert _problems(found, "not a safe account name")
    assert _problems(found, "'/home/../etc' is not a plain absolute path")
    assert _problems(found, f"home '/home/{p}link' is a symlink that leads out of the server's root")
    assert _problems(found, "/etc/passwd line")
    assert _problems(found, "5 fields instead of 7")
    assert not _problems(found, f"{p}app")  # a service user with its home elsewhere: not reported


class NoDatabases:
    def grants_catalog(self) -> tuple[list[str], list[str]]:
        return [], []


def test_a_second_discovery_marks_new_removed_and_returned_accounts_and_keeps_admin_edits(cpanel, p):
    """GIVEN a first discovery, an admin's edit of one account's home and a manual account
    WHEN accounts are added to and removed from the server and discovery runs again (twice)
    THEN the new ones are added, the gone ones get removed_at (rows and backups stay), the
    manual account is never marked removed, the admin's home wins, and an account that comes
    back is no longer removed."""
    discovery.discover(server=NoDatabases())
    edited = Account.objects.get(username=f"{p}u05")
    edited.home = f"/home/{p}u05-moved"
    edited.mark_set_by_admin(["home"])
    edited.save()
    Account.objects.create(username=f"{p}manual", home=f"/home/{p}manual")
    cpanel.add_account(f"{p}new1", owner=f"{p}res1")
    cpanel.add_account(f"{p}new2")
    cpanel.remove_account(f"{p}u04")
    cpanel.remove_account(f"{p}u06")
    cpanel.user_file(f"{p}u05", f"USER={p}u05\nOWNER={p}res2\nDNS={p}u05.example\n")
    cpanel.write()

    _, summary = discovery.discover(server=NoDatabases())

    assert sorted(summary.added) == [f"{p}new1", f"{p}new2"]
    assert sorted(summary.removed) == [f"{p}u04", f"{p}u06"]
    gone = Account.objects.get(username=f"{p}u04")
    assert gone.removed_at is not None
    assert gone.home == f"/home2/{p}u04"
    assert Account.objects.get(username=f"{p}manual").removed_at is None
    u05 = Account.objects.get(username=f"{p}u05")
    assert (u05.home, u05.reseller) == (f"/home/{p}u05-moved", f"{p}res2")  # admin's home, server's owner

    cpanel.add_account(f"{p}u04")
    cpanel.write()
    _, again = discovery.discover(server=NoDatabases())
    assert again.returned == [f"{p}u04"]
    assert Account.objects.get(username=f"{p}u04").removed_at is None
    assert again.removed == []


def test_a_file_that_hides_every_account_would_fail_the_run_and_change_nothing(cpanel, p, settings):
    """GIVEN accounts found once WHEN passwd is unreadable (here: a directory) THEN the queue
    item fails with the reason and no account is marked removed."""
    discovery.discover(server=NoDatabases())
    passwd = cpanel.root / "etc" / "passwd"
    passwd.unlink()
    passwd.mkdir()
    item = queue.enqueue(QueueItem.Kind.DISCOVERY, dispatch=False)
    queue.run_item(item.pk, QueueItem.Kind.DISCOVERY, discovery.run)
    item.refresh_from_db()
    assert item.status == "failed"
    assert "/etc/passwd: not a regular file" in item.error
    assert not Account.objects.filter(removed_at__isnull=False).exists()


def test_find_accounts_through_the_api_answers_one_queue_item_whose_result_lists_problems(
    cpanel, p, admin_user, monkeypatch
):
    """GIVEN an admin's token WHEN POST /api/v1/accounts/discover/ twice THEN both answer the
    same pending discovery item; run, it completes with counts and the problems found."""
    monkeypatch.setattr(discovery.mysql, "server", NoDatabases)
    api = APIClient()
    api.force_authenticate(admin_user)
    first = api.post("/api/v1/accounts/discover/")
    second = api.post("/api/v1/accounts/discover/")
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["kind"] == "discovery"

    queue.run_item(first.json()["id"], QueueItem.Kind.DISCOVERY, discovery.run)
    item = QueueItem.objects.get(pk=first.json()["id"])
    assert item.status == "completed", item.error
    assert item.result["server"] == "cpanel"
    assert item.result["found"] == 24
    assert any("not a safe account name" in line for line in item.result["problems"])
    assert any("warning:" in line and "Bad.Name" in line for line in item.log)

    client = APIClient()
    client.force_authenticate(_client_user())
    assert client.post("/api/v1/accounts/discover/").status_code == 404  # a client: not theirs
    assert QueueItem.objects.filter(kind="discovery").count() == 1


def _client_user():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("dsc-client", password="x")


def test_discovery_is_scheduled_hourly_by_default_and_the_admin_can_change_it(admin_client):
    """GIVEN a migrated database THEN beat has an hourly discovery; WHEN the admin saves
    another schedule, or none, on the accounts page THEN beat follows (off: kept, disabled)."""
    task = PeriodicTask.objects.get(name=schedules.DISCOVERY_TASK_NAME)
    assert task.task == "jobs.tasks.scheduled_discovery"
    assert task.enabled
    assert schedules.discovery_schedule() == "17 * * * *"

    admin_client.post("/accounts/discovery-schedule/", {"schedule": "5 */6 * * *"})
    assert schedules.discovery_schedule() == "5 */6 * * *"
    page = admin_client.get("/accounts/").content.decode()
    assert 'value="5 */6 * * *"' in page
    assert 'id="find-accounts"' in page
    refused = admin_client.post("/accounts/discovery-schedule/", {"schedule": "every day"}, follow=True)
    assert schedules.discovery_schedule() == "5 */6 * * *"
    assert "five fields" in refused.content.decode()
    admin_client.post("/accounts/discovery-schedule/", {"schedule": ""})
    assert schedules.discovery_schedule() == ""
    schedules.ensure_discovery_schedule()  # e.g. the next migrate: the admin's "off" stays
    assert schedules.discovery_schedule() == ""


def test_backups_of_a_removed_account_are_deleted_only_after_the_retention(db, settings, tmp_path):
    """GIVEN an account removed 31 days ago with a complete, a locked and a cPanel backup, and
    one removed 5 days ago WHEN the daily expiry runs THEN only the first account's unlocked
    Backupsite backup is queued for deletion; with retention 0 nothing is."""
    from destinations.models import Destination
    from jobs.models import Snapshot

    destination = Destination.objects.create(name="d", host="127.0.0.1", username="u", directory="b")
    now = timezone.now()
    old = Account.objects.create(username="dscold", source="cpanel", removed_at=now - timedelta(days=31))
    recent = Account.objects.create(username="dscrecent", source="cpanel", removed_at=now - timedelta(days=5))

    def backup(account: Account, *, engine: str = "native", locked: bool = False) -> Snapshot:
        return Snapshot.objects.create(
            destination=destination,
            account=account,
            account_name=account.username,
            engine=engine,
            path=f"{account.username}/{secrets.token_hex(4)}",
            created=now,
            state="complete",
            locked=locked,
        )

    doomed = backup(old)
    backup(old, locked=True)
    backup(old, engine="cpanel")
    backup(recent)

    settings.REMOVED_ACCOUNT_RETENTION_DAYS = 0
    assert removed.expire() == 0
    settings.REMOVED_ACCOUNT_RETENTION_DAYS = 30
    assert removed.expire() == 1
    (item,) = QueueItem.objects.filter(kind="rotation")
    assert item.snapshot == doomed
    assert removed.expire() == 0  # already queued


def test_a_restore_writes_into_the_home_as_the_server_names_it_under_the_host_root(tmp_path, settings):
    """GIVEN BACKUPSITE_HOST_ROOT=<tmp>/host and an account whose home is /home/bob
    WHEN a restore opens its home with a new folder THEN the folder is made in
    <tmp>/host/home/bob and shown as /home/bob/restore-…; nothing is written at /home/bob."""
    from jobs.restore.sinks.home import HomeTarget

    settings.HOST_ROOT = str(tmp_path / "host")
    real = tmp_path / "host" / "home" / "dscbob"
    real.mkdir(parents=True)
    account = Account.objects.create(username="dscbob", home="/home/dscbob")
    target = HomeTarget(account, new_folder=True)
    try:
        assert target.display.startswith("/home/dscbob/restore-")
        assert [p.name for p in real.iterdir()] == [target.new_folder]
    finally:
        target.close()


def test_accounts_gone_from_the_server_are_told_in_one_message_naming_them(cpanel, p, monkeypatch):
    """GIVEN an email target for account_removed and discovered accounts WHEN two accounts
    vanish and discovery runs as a queue item THEN one account_removed message names both
    and says how long their backups stay; a run that removes nothing tells nothing."""
    from jobs.models import Notification, NotificationTarget
    from jobs.notify import events as notifications
    from jobs.notify import senders

    monkeypatch.setattr(discovery.mysql, "server", NoDatabases)
    target = NotificationTarget(name="ops", events=["account_removed"])
    notifications.save_target(target, senders.parse_target("ops@example.com"))

    def run_discovery() -> QueueItem:
        item = queue.enqueue(QueueItem.Kind.DISCOVERY, dispatch=False)
        queue.run_item(item.pk, QueueItem.Kind.DISCOVERY, discovery.run)
        item.refresh_from_db()
        return item

    run_discovery()
    assert not Notification.objects.exists()
    cpanel.remove_account(f"{p}u10")
    cpanel.remove_account(f"{p}u11")
    cpanel.write()
    item = run_discovery()

    (message,) = Notification.objects.filter(event="account_removed")
    assert message.queue_item == item
    assert "2 accounts are gone from the server" in message.subject
    assert f"gone: {p}u10" in message.body
    assert f"gone: {p}u11" in message.body
    assert "30 days" in message.body
