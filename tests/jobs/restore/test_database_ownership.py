"""Database ownership between accounts whose names share a prefix (`alice` and `alice_x`).

Two clients: one owns account ALICE, the other account ALICE_X (= ALICE + "_x"). Every
attack of client alice on alice_x's database (a dump of it in her backup, `database_name`
aimed at it, a download of it, a crafted `mysql.sql` with users and grants for it) goes through
the pages and the API, against the real pure-ftpd and MariaDB; afterwards alice_x rows and
the server's users and grants are read back to show that nothing changed outside alice.
"""

from __future__ import annotations

import gzip
import secrets
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework.test import APIClient

from destinations.models import Destination
from jobs.dbserver.client import DumpSource, MysqlServer
from jobs.dbserver.grants import LOOPBACK_HOSTS, restore_grants
from jobs.models import Account, QueueItem, Snapshot
from jobs.ownership import Owners
from tests.support.cpanel_archives.hostile import _member
from tests.support.fixtures_jobs import make_job, run_job
from tests.support.fixtures_restore import (
    HOME_OWNER,
    chown_tree,
    cpanel_folder,
    index_cpanel,
    leftover_restore_users,
    make_native_backup,
    rows,
    run_item,
)

pytest_plugins = ["tests.support.fixtures_restore"]

VIAS = ["page", "api"]


# --- the rule itself (plain Python) -----------------------------------------------------------


def test_the_longest_account_name_owns_a_database_or_user() -> None:
    owners = Owners.of(["alice", "alice_x", "bob"], {"bob": ["wordpress"], "alice": ["shared"]})

    assert owners.database_owner("alice_wp") == "alice"
    assert owners.database_owner("alice_x_wp") == "alice_x"
    assert owners.database_owner("alice_xy") == "alice"  # alice_x_ is not a prefix of it
    assert owners.database_owner("alice_x") == "alice_x"  # the account's own name
    assert owners.user_owner("alice_x") == "alice_x"  # cPanel's main database user
    assert owners.user_owner("alice") == "alice"
    assert owners.user_owner("alice_evil") == "alice"
    assert owners.database_owner("wordpress") == "bob"  # listed, no account's prefix
    assert owners.database_owner("aliceshop") is None
    assert owners.database_owner("mysql") is None
    assert not owners.owns_database("alice", "alice_x_wp")
    assert "belongs to account alice_x" in owners.why_not_database("alice", "alice_x_wp")
    # the same unprefixed name listed twice belongs to neither
    both = Owners.of(["a", "b"], {"a": ["shared"], "b": ["shared"]})
    assert both.database_owner("shared") is None
    assert "several accounts" in both.why_not_database("a", "shared")
    # an account created later takes over what is its own
    assert Owners.of(["alice"]).database_owner("alice_x_wp") == "alice"
    assert Owners.of(["alice", "alice_x"]).database_owner("alice_x_wp") == "alice_x"


def test_grants_are_rebuilt_only_for_hosts_the_account_has() -> None:
    """GIVEN grants for localhost, a remote host the account has, and one it has not
    WHEN restored with the account's hosts THEN only the first two are rebuilt."""
    statements: list[str] = []

    class Server:
        def query(self, sql: str, database: str = "") -> list[list[str]]:
            statements.append(sql)
            return [["1"]]  # every user exists already

    sql = "\n".join(
        f"GRANT SELECT ON `bob\\_wp`.* TO 'bob_ro'@'{host}';" for host in ("localhost", "10.0.0.%", "%")
    )
    outcome = restore_grants(
        Server(),  # type: ignore[arg-type]
        account_name="bob",
        mysql_sql=sql,
        owners=Owners.of(["bob"]),
        hosts=LOOPBACK_HOSTS | {"10.0.0.%"},
    )

    assert outcome.applied == ["bob_ro@localhost", "bob_ro@10.0.0.%"]
    assert [what for what, _ in outcome.skipped] == ["bob_ro@%"]
    assert "host '%' is not one account bob's database users have" in outcome.skipped[0][1]
    assert [s for s in statements if s.startswith("GRANT")] == [
        "GRANT SELECT ON `bob\\_wp`.* TO 'bob_ro'@'localhost'",
        "GRANT SELECT ON `bob\\_wp`.* TO 'bob_ro'@'10.0.0.%'",
    ]


# --- two tenants ------------------------------------------------------------------------------


@dataclass
class Tenants:
    alice: Account
    alice_x: Account
    alice_client: Any
    x_client: Any
    alice_db: str  # ALICE_wp
    x_db: str  # ALICE_x_wp
    server: MysqlServer

    def x_rows(self) -> list[list[str]]:
        return rows(self.server, self.x_db, "secrets")


@pytest.fixture
def tenants(db: Any, tmp_path: Path, mysql_cleanup: list[str], restore_mysql: MysqlServer) -> Tenants:
    base = f"dbo{secrets.token_hex(3)}"
    mysql_cleanup.append(base)  # drops base_* (base_x_* too) databases and users, and user base
    users = get_user_model().objects
    alice_client = users.create_user(f"{base}-alice", password="alice-pw-1234")
    x_client = users.create_user(f"{base}-x", password="x-pw-1234")
    accounts = []
    for name, client in ((base, alice_client), (f"{base}_x", x_client)):
        home = tmp_path / "homes" / name
        home.mkdir(parents=True)
        chown_tree(home, HOME_OWNER)
        accounts.append(Account.objects.create(username=name, home=str(home), owner=client))
    alice_db, x_db = f"{base}_wp", f"{base}_x_wp"
    for name, text in ((alice_db, "alice row"), (x_db, "alice_x row")):
        restore_mysql.query(f"CREATE DATABASE `{name}`")
        restore_mysql.query("CREATE TABLE secrets (id INT PRIMARY KEY, v TEXT)", database=name)
        restore_mysql.query(f"INSERT INTO secrets VALUES (1, '{text}')", database=name)
    return Tenants(accounts[0], accounts[1], alice_client, x_client, alice_db, x_db, restore_mysql)


def submit(
    via: str, user: Any, snapshot: Snapshot, data: dict[str, Any], *, download: bool = False
) -> tuple[QueueItem | None, str]:
    """Send a restore or download request as the pages (the form, then the confirmation page's
    button) or the API do: (the queued item, or None and the error text shown)."""
    verb = "download" if download else "restore"
    if via == "api":
        api = APIClient()
        api.force_authenticate(user)
        response = api.post(f"/api/v1/snapshots/{snapshot.pk}/{verb}/", data, format="json")
        if response.status_code == 202:
            return QueueItem.objects.get(pk=response.json()["id"]), ""
        assert response.status_code == 400, response.content
        return None, response.content.decode()
    page = Client()
    page.force_login(user)
    form: dict[str, Any] = {
        "parts": [f"{p['kind']}:{p['name']}" for p in data.get("parts", [])],
        "target": data.get("target", "new_folder"),  # the form always sends its choices
        "database_target": "new" if data.get("database_name") else "live",
        "database_name": data.get("database_name", ""),
    }
    if data.get("whole_account"):
        form["whole_account"] = "1"
    before = set(QueueItem.objects.values_list("pk", flat=True))
    sent = page.post(f"/backups/{snapshot.pk}/{verb}/", form)
    if sent.status_code == 200 and not download:  # the page that says what will happen
        assert 'name="confirmed"' in sent.content.decode()
        confirmed = {**form, "confirmed": "1"}
        if data.get("confirm_overwrite"):
            confirmed["confirm_overwrite"] = "1"
        sent = page.post(f"/backups/{snapshot.pk}/{verb}/", confirmed)
    assert sent.status_code == 302, sent.content
    created = QueueItem.objects.exclude(pk__in=before)
    if "/queue/" in sent["Location"]:
        return created.get(), ""
    assert not created.exists()
    return None, " ".join(str(m) for m in get_messages(sent.wsgi_request))


def native_backup_of_alice(tenants: Tenants, destination: Destination) -> Snapshot:
    """A backup of alice that dumped alice_x_wp too (the prefix rule before this fix, or a
    backup taken before account alice_x existed)."""
    sources = [DumpSource(name=db, server=tenants.server) for db in (tenants.alice_db, tenants.x_db)]
    return make_native_backup(destination, tenants.alice, databases=sources, home=False).snapshot


# --- backups --------------------------------------------------------------------------------------


def test_a_backup_dumps_only_the_databases_the_account_owns_and_says_what_it_left(
    restore_native_destination: Destination, tenants: Tenants
) -> None:
    """
    GIVEN accounts alice (no databases listed) and alice_x, databases alice_wp and alice_x_wp
    WHEN alice's job runs, and again with both databases listed on alice (listed before alice_x
         existed, so never validated against it)
    THEN each backup holds alice_wp only, and the run's log and result say that alice_x_wp
         belongs to alice_x and is no longer backed up with alice
    """
    job = make_job(restore_native_destination, tenants.alice, include_home=False, include_databases=True)
    for listed in ([], [tenants.alice_db, tenants.x_db]):
        Account.objects.filter(pk=tenants.alice.pk).update(databases=listed)

        item = run_job(job)

        assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
        (result,) = item.result["accounts"]
        snapshot = Snapshot.objects.get(pk=result["snapshot"])
        assert [p["name"] for p in snapshot.parts if p["kind"] == "databases"] == [tenants.alice_db]
        (note,) = result["notes"]
        assert f"{tenants.x_db} belongs to account {tenants.alice_x.username}" in note
        assert f"not backed up with {tenants.alice.username}" in note
        assert any(note in line for line in item.log)


def test_listing_another_accounts_database_is_refused_by_the_form_the_api_and_the_model(
    tenants: Tenants, admin_user: Any
) -> None:
    alice = tenants.alice
    page = Client()
    page.force_login(admin_user)
    response = page.post(
        f"/accounts/{alice.pk}/edit/",
        {"username": alice.username, "home": alice.home, "databases": f"{tenants.alice_db}\n{tenants.x_db}"},
    )
    assert response.status_code == 200  # the form again, with the error
    assert f"{tenants.x_db} belongs to account {tenants.alice_x.username}" in response.content.decode()

    api = APIClient()
    api.force_authenticate(admin_user)
    answer = api.patch(f"/api/v1/accounts/{alice.pk}/", {"databases": [tenants.x_db]}, format="json")
    assert answer.status_code == 400
    assert f"belongs to account {tenants.alice_x.username}" in answer.json()["databases"][0]

    alice.databases = [tenants.x_db]
    with pytest.raises(ValidationError) as caught:
        alice.full_clean()
    assert "databases" in caught.value.message_dict
    alice.refresh_from_db()
    assert alice.databases == []
    alice.databases = [tenants.alice_db, "wordpress"]
    alice.full_clean()  # its own names, and one no account's prefix claims, are fine


def test_an_account_created_later_takes_over_its_databases_with_a_note(
    tenants: Tenants, admin_user: Any
) -> None:
    """GIVEN alice lists ALICE_y_wp WHEN the admin creates account ALICE_y THEN the page says that
    ALICE_y_wp now belongs to it and is no longer backed up with alice."""
    newcomer = f"{tenants.alice.username}_y"
    Account.objects.filter(pk=tenants.alice.pk).update(databases=[f"{newcomer}_wp"])
    page = Client()
    page.force_login(admin_user)

    response = page.post("/accounts/new/", {"username": newcomer, "home": "", "databases": ""}, follow=True)

    shown = [str(m) for m in response.context["messages"]]
    assert (
        f"{newcomer}_wp now belongs to account {newcomer}, no longer backed up with {tenants.alice.username}."
        in shown
    )


# --- restores and downloads of native backups -------------------------------------------------------


@pytest.mark.peer
@pytest.mark.parametrize("via", VIAS)
def test_database_name_cannot_aim_a_restore_at_another_accounts_database(
    via: str, restore_native_destination: Destination, tenants: Tenants
) -> None:
    """
    GIVEN alice's backup of alice_wp
    WHEN client alice restores it with database_name alice_x_wp over the existing database
    THEN it is refused with a message naming alice_x, nothing is queued, alice_x_wp keeps its
         rows; and a queue item forged with that name fails in the worker without writing
    """
    snapshot = make_native_backup(
        restore_native_destination,
        tenants.alice,
        databases=[DumpSource(name=tenants.alice_db, server=tenants.server)],
        home=False,
    ).snapshot
    request = {
        "parts": [{"kind": "databases", "name": tenants.alice_db}],
        "database_name": tenants.x_db,
        "target": "overwrite",
        "confirm_overwrite": True,
    }

    item, shown = submit(via, tenants.alice_client, snapshot, request)

    assert item is None
    assert f"{tenants.x_db} belongs to account {tenants.alice_x.username}" in shown
    assert tenants.x_rows() == [["1", "alice_x row"]]

    forged = QueueItem.objects.create(
        kind=QueueItem.Kind.RESTORE,
        account=tenants.alice,
        snapshot=snapshot,
        destination=snapshot.destination,
        requested_by=tenants.alice_client,
        params=request,
    )
    forged = run_item(forged)
    assert forged.status == QueueItem.Status.FAILED
    assert f"belongs to account {tenants.alice_x.username}" in forged.error
    assert tenants.x_rows() == [["1", "alice_x row"]]
    assert leftover_restore_users(tenants.server) == []


@pytest.mark.peer
@pytest.mark.parametrize("via", VIAS)
def test_another_accounts_database_in_a_backup_is_neither_restored_nor_downloaded(
    via: str, restore_native_destination: Destination, tenants: Tenants
) -> None:
    """
    GIVEN alice's backup that holds dumps of alice_wp and alice_x_wp, and alice_x's live rows
          changed since
    WHEN client alice asks for the alice_x_wp part (restore, download), then for everything
    THEN the part requests are refused; the whole restore brings back alice_wp only and the
         whole download holds alice_wp's dump only, each saying alice_x_wp was skipped and why;
         alice_x_wp keeps its current rows
    """
    snapshot = native_backup_of_alice(tenants, restore_native_destination)
    tenants.server.query("UPDATE secrets SET v = 'changed by alice_x' WHERE id = 1", database=tenants.x_db)
    tenants.server.query("UPDATE secrets SET v = 'changed by alice' WHERE id = 1", database=tenants.alice_db)
    part = {"parts": [{"kind": "databases", "name": tenants.x_db}]}
    for download in (False, True):
        item, shown = submit(via, tenants.alice_client, snapshot, part, download=download)
        assert item is None
        assert f"{tenants.x_db} belongs to account {tenants.alice_x.username}" in shown

    item, _ = submit(via, tenants.alice_client, snapshot, {"whole_account": True, "confirm_overwrite": True})
    assert item is not None
    item = run_item(item)
    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    assert [db["target"] for db in item.result["databases"]] == [tenants.alice_db]
    assert rows(tenants.server, tenants.alice_db, "secrets") == [["1", "alice row"]]
    assert tenants.x_rows() == [["1", "changed by alice_x"]]
    reasons = {s["path"]: s["reason"] for s in item.result["skipped"]}
    assert f"belongs to account {tenants.alice_x.username}" in reasons[f"databases: {tenants.x_db}"]

    item, _ = submit(via, tenants.alice_client, snapshot, {"whole_account": True}, download=True)
    assert item is not None
    item = run_item(item)
    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    with _opened(item) as tar:
        names = tar.getnames()
    assert names == [f"databases/{tenants.alice_db}.sql"]
    reasons = {s["path"]: s["reason"] for s in item.result["skipped"]}
    assert f"belongs to account {tenants.alice_x.username}" in reasons[f"databases: {tenants.x_db}"]


@pytest.mark.peer
def test_the_pages_whole_account_restore_into_a_new_name_leaves_out_another_accounts_database(
    restore_native_destination: Destination, tenants: Tenants
) -> None:
    """GIVEN alice's backup with dumps of alice_wp and alice_x_wp WHEN client alice restores the
    whole account from the page with its default (databases into a new name) THEN alice_wp
    goes into alice_wp_restored and alice_x_wp, which is not hers, neither counts nor is
    restored."""
    snapshot = native_backup_of_alice(tenants, restore_native_destination)
    page = Client()
    page.force_login(tenants.alice_client)
    form = {"whole_account": "1", "target": "new_folder", "database_target": "new", "database_name": ""}

    asked = page.post(f"/backups/{snapshot.pk}/restore/", form)
    assert asked.status_code == 200, [str(m) for m in get_messages(asked.wsgi_request)]
    assert f"{tenants.x_db} belongs to account {tenants.alice_x.username}" in asked.content.decode()
    sent = page.post(f"/backups/{snapshot.pk}/restore/", {**form, "confirmed": "1"})
    assert sent.status_code == 302
    assert "/queue/" in sent["Location"], [str(m) for m in get_messages(sent.wsgi_request)]
    item = run_item(QueueItem.objects.get(kind=QueueItem.Kind.RESTORE, snapshot=snapshot))

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)
    copy = f"{tenants.alice_db}_restored"
    assert [db["target"] for db in item.result["databases"]] == [copy]
    assert rows(tenants.server, copy, "secrets") == [["1", "alice row"]]
    assert tenants.x_rows() == [["1", "alice_x row"]]


def _opened(item: QueueItem) -> tarfile.TarFile:
    from jobs.restore import downloads

    path = downloads.download_file(item)
    assert path is not None
    return tarfile.open(path, "r:gz")


# --- a crafted cPanel archive: dumps, users and grants ---------------------------------------------


HASH = "*" + "A1" * 20


def crafted_archive(folder: Path, tenants: Tenants) -> None:
    """alice's cPanel archive with a dump of alice_x_wp and a mysql.sql that reaches for alice_x."""
    a, x = tenants.alice.username, tenants.alice_x.username
    pattern = lambda db: db.replace("_", "\\_")  # noqa: E731 - as cPanel escapes names
    grants = "\n".join(
        [
            "-- cPanel mysql backup",
            f"GRANT USAGE ON *.* TO '{a}_wp'@'localhost' IDENTIFIED BY PASSWORD '{HASH}';",
            f"GRANT ALL PRIVILEGES ON `{pattern(tenants.alice_db)}`.* TO '{a}_wp'@'localhost';",
            f"GRANT ALL PRIVILEGES ON `{pattern(a)}\\_%`.* TO '{a}_wp'@'localhost';",
            f"GRANT ALL PRIVILEGES ON `{pattern(tenants.x_db)}`.* TO '{a}_wp'@'localhost';",
            f"GRANT USAGE ON *.* TO '{x}'@'localhost' IDENTIFIED BY PASSWORD '{HASH}';",
            f"GRANT ALL PRIVILEGES ON `{pattern(tenants.x_db)}`.* TO '{x}'@'localhost';",
            f"GRANT USAGE ON *.* TO '{x}_evil'@'localhost' IDENTIFIED BY PASSWORD '{HASH}';",
            f"GRANT USAGE ON *.* TO '{a}_evil'@'%' IDENTIFIED BY PASSWORD '{HASH}';",
            f"GRANT ALL PRIVILEGES ON `{pattern(tenants.x_db)}`.* TO '{a}_evil'@'%';",
            f"CREATE USER '{a}_raw'@'%' IDENTIFIED BY 'pw';",
        ]
    )
    dump = b"DROP TABLE IF EXISTS `secrets`;\nCREATE TABLE `secrets` (id INT PRIMARY KEY, v TEXT);\n"
    members = [
        _member(f"{a}/", typeflag=b"5", mode=0o755),
        _member(f"{a}/cp/{a}", f"USER={a}\nDNS={a}site.com\n".encode()),
        _member(f"{a}/homedir/", typeflag=b"5", mode=0o711),
        _member(f"{a}/homedir/index.html", b"<html>hi</html>\n"),
        _member(f"{a}/mysql.sql", grants.encode() + b"\n", mode=0o600),
        _member(f"{a}/mysql/", typeflag=b"5", mode=0o755),
        _member(
            f"{a}/mysql/{tenants.alice_db}.sql",
            dump + b"INSERT INTO secrets VALUES (1, 'from the archive');\n",
        ),
        _member(
            f"{a}/mysql/{tenants.x_db}.sql", dump + b"INSERT INTO secrets VALUES (1, 'pwned by alice');\n"
        ),
    ]
    data = b"".join(members) + bytes(1024)
    (folder / f"{a}.tar.gz").write_bytes(gzip.compress(data + bytes(-len(data) % 10240), mtime=0))


@pytest.fixture
def crafted(restore_cpanel_destination: Destination, pure_ftpd: Any, tenants: Tenants) -> Snapshot:
    crafted_archive(cpanel_folder(pure_ftpd, restore_cpanel_destination), tenants)
    (snapshot,) = index_cpanel(restore_cpanel_destination)
    assert snapshot.restorable, snapshot.problems
    assert snapshot.account_id == tenants.alice.pk
    return snapshot


def batch_pattern(database: str) -> str:
    """A grant pattern as the client's --batch output shows it (backslashes doubled)."""
    return database.replace("_", "\\\\_")


def users_of(server: MysqlServer, base: str) -> list[list[str]]:
    like = base.replace("_", "\\_")
    return server.query(
        f"SELECT User, Host FROM mysql.user WHERE User = '{base}' OR User LIKE '{like}\\_%' ORDER BY User, Host"
    )


@pytest.mark.peer
@pytest.mark.parametrize("via", VIAS)
def test_a_crafted_dump_creates_no_user_or_grant_outside_the_account(
    via: str, crafted: Snapshot, tenants: Tenants
) -> None:
    """
    GIVEN alice's cPanel archive with a dump of alice_x_wp and a mysql.sql that grants alice_x
          and alice_x_evil (alice_x's users), alice_evil@'%' and alice_wp (wildcard and direct)
          rights on alice_x_wp
    WHEN client alice asks for the alice_x user or alice_x_wp part THEN it is refused; and WHEN
         she restores everything
    THEN only alice_wp@localhost is created, with rights on alice_wp alone; nothing names
         alice_x_wp in the grant tables; alice_x_wp keeps its rows; each refused line is in the
         result with its reason
    """
    base = tenants.alice.username
    for part in (
        {"kind": "db_users", "name": tenants.alice_x.username},
        {"kind": "databases", "name": tenants.x_db},
    ):
        item, shown = submit(via, tenants.alice_client, crafted, {"parts": [part]})
        assert item is None
        assert f"belongs to account {tenants.alice_x.username}" in shown

    item, _ = submit(via, tenants.alice_client, crafted, {"whole_account": True, "confirm_overwrite": True})
    assert item is not None
    item = run_item(item)

    assert item.status == QueueItem.Status.COMPLETED, (item.error, item.result)  # refusals are not failures
    assert users_of(tenants.server, base) == [[f"{base}_wp", "localhost"]]
    grants = [g for (g,) in tenants.server.query(f"SHOW GRANTS FOR '{base}_wp'@'localhost'")]
    assert [g for g in grants if "ALL PRIVILEGES" in g] == [
        f"GRANT ALL PRIVILEGES ON `{batch_pattern(tenants.alice_db)}`.* TO `{base}_wp`@`localhost`"
    ]
    assert tenants.server.query(
        f"SELECT User, Host, Db FROM mysql.db WHERE Db LIKE '{base}%' AND User LIKE '{base}%'"
    ) == [[f"{base}_wp", "localhost", batch_pattern(tenants.alice_db)]]
    assert tenants.x_rows() == [["1", "alice_x row"]]
    assert rows(tenants.server, tenants.alice_db, "secrets") == [["1", "from the archive"]]
    reasons = {s["path"]: s["reason"] for s in item.result["skipped"]}
    x = tenants.alice_x.username
    assert f"belongs to account {x}" in reasons[f"db_users: {x}@localhost"]
    assert f"belongs to account {x}" in reasons[f"db_users: {x}_evil@localhost"]
    assert "host '%' is not one" in reasons[f"db_users: {base}_evil@%"]
    assert f"belongs to account {x}" in reasons[f"databases: {tenants.x_db}"]
    refused_grants = [r for p, r in reasons.items() if p.startswith("db_users: GRANT ALL")]
    assert len(refused_grants) == 2  # the wildcard and alice_x_wp, for alice_wp
    assert all("each named exactly" in r for r in refused_grants)
    assert any("not a GRANT statement" in r for p, r in reasons.items() if "CREATE USER" in p)
    assert item.result["db_users"] == [f"{base}_wp@localhost"]
    assert leftover_restore_users(tenants.server) == []
