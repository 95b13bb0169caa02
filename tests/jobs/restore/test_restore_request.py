"""Validating restore and download requests, and queueing them (no FTP, no MariaDB)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from destinations import listing
from destinations.models import Destination, Engine
from jobs.dbserver.grants import restore_grants
from jobs.dbserver.load import DefinerFilter
from jobs.dbserver.sql import account_may_use, grant_pattern
from jobs.models import Account, QueueItem, Snapshot
from jobs.restore.plan import CONFIG_REASON, RestoreRequest, build_plan
from jobs.restore.request import queue_download, queue_restore, validate_request

pytestmark = pytest.mark.django_db

PARTS = [
    {"kind": "homedir", "name": "", "size": 10},
    {"kind": "databases", "name": "bob_wp", "size": 5},
    {"kind": "databases", "name": "bob_shop", "size": 5},
    {"kind": "email_accounts", "name": "info@bob.com", "size": 3},
    {"kind": "dns_zones", "name": "bob.com", "size": 1, "text": "zone"},
    {"kind": "db_users", "name": "bob_wp", "size": 1},
]


@pytest.fixture
def snapshot() -> Snapshot:
    destination = Destination.objects.create(name="d", engine=Engine.CPANEL, host="127.0.0.1", username="u")
    account = Account.objects.create(username="bob", home="/home/bob")
    root = listing.build(
        [
            listing.Entry("public_html", "dir"),
            listing.Entry("public_html/index.php", "file", size=10),
            listing.Entry("mail/bob.com/info/cur/1", "file", size=3),
        ]
    )
    return Snapshot.objects.create(
        destination=destination,
        account=account,
        account_name="bob",
        engine=Engine.CPANEL,
        path="2025-07-04/accounts/bob.tar.gz",
        created=datetime(2025, 7, 4, tzinfo=UTC),
        state=Snapshot.State.COMPLETE,
        parts=PARTS,
        listing_root=root,
    )


def errors(snapshot: Snapshot, data: object, **options: bool) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        validate_request(snapshot, data, **options)
    return caught.value.message_dict


def test_a_valid_request_comes_back_typed_and_normalised(snapshot: Snapshot) -> None:
    request = validate_request(
        snapshot,
        {
            "parts": [{"kind": "databases", "name": "bob_wp"}, {"kind": "databases", "name": "bob_wp"}],
            "paths": ["public_html/", "public_html/index.php", "./mail//bob.com"],
            "target": "overwrite",
            "database_name": "bob_wp_copy",
            "confirm_overwrite": True,
        },
    )
    assert request == RestoreRequest(
        parts=(("databases", "bob_wp"),),
        paths=("public_html", "mail/bob.com"),
        target="overwrite",
        database_name="bob_wp_copy",
    )
    whole = {"whole_account": True, "database_name": "", "confirm_overwrite": True}
    assert validate_request(snapshot, whole).everything
    assert validate_request(snapshot, whole).target == "new_folder"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"parts": [{"kind": "crontab", "name": ""}]}, "parts", "no 'crontab' parts"),
        (
            {"parts": [{"kind": "databases", "name": "bob_nope"}]},
            "parts",
            "no databases part named 'bob_nope'",
        ),
        ({"parts": "homedir"}, "parts", "list"),
        ({"parts": [{"name": "x"}]}, "parts", "kind and a name"),
        ({"paths": ["public_html/missing.php"]}, "paths", "not in this backup"),
        ({"paths": ["../etc/passwd"]}, "paths", "'..'"),
        ({"paths": ["public_html/../../etc"]}, "paths", "'..'"),
        ({"paths": ["/home/bob/public_html"]}, "paths", "not absolute"),
        ({"paths": [""]}, "paths", "non-empty"),
        ({"paths": [7]}, "paths", "non-empty"),
        ({"target": "somewhere"}, "target", "new_folder, overwrite"),
        (
            {"parts": [{"kind": "databases", "name": "bob_wp"}], "database_name": "alice_wp"},
            "database_name",
            "bob_",
        ),
        (
            {"parts": [{"kind": "databases", "name": "bob_wp"}], "database_name": "bob_wp`; DROP"},
            "database_name",
            "letters, digits",
        ),
        (
            {"parts": [{"kind": "databases", "name": "bob_wp"}], "database_name": "bob_" + "x" * 61},
            "database_name",
            "64",
        ),
        (
            {
                "parts": [{"kind": "databases", "name": "bob_wp"}, {"kind": "databases", "name": "bob_shop"}],
                "database_name": "bob_new",
            },
            "database_name",
            "exactly one database",
        ),
        ({"database_name": "bob_new"}, "database_name", "exactly one database"),
        ({"parts": [], "sneaky": 1}, "__all__", "Unknown fields: sneaky"),
    ],
)
def test_bad_requests_get_a_specific_message_on_their_field(
    snapshot: Snapshot, data: dict[str, object], field: str, message: str
) -> None:
    found = errors(snapshot, data)
    assert any(message in text for text in found[field]), found


def test_several_problems_are_reported_together(snapshot: Snapshot) -> None:
    found = errors(snapshot, {"parts": [{"kind": "nope", "name": ""}], "paths": ["missing"], "target": "x"})
    assert set(found) == {"parts", "paths", "target"}


def test_a_backup_that_is_not_restorable_is_refused(snapshot: Snapshot) -> None:
    snapshot.flags = ["unsafe_members"]
    assert "cannot be restored" in errors(snapshot, {"whole_account": True})["__all__"][0]
    snapshot.flags = []
    snapshot.state = Snapshot.State.INCOMPLETE
    assert "cannot be restored" in errors(snapshot, {"whole_account": True}, for_download=True)["__all__"][0]


def test_files_need_a_home_folder_but_databases_do_not(snapshot: Snapshot) -> None:
    assert snapshot.account is not None
    Account.objects.filter(pk=snapshot.account.pk).update(home="")
    snapshot.refresh_from_db()
    assert "no home folder" in errors(snapshot, {"paths": ["public_html"]})["__all__"][0]
    assert "no home folder" in errors(snapshot, {"whole_account": True})["__all__"][0]
    request = validate_request(
        snapshot, {"parts": [{"kind": "databases", "name": "bob_wp"}], "confirm_overwrite": True}
    )
    assert request.parts == (("databases", "bob_wp"),)
    assert validate_request(snapshot, {"paths": ["public_html"]}, for_download=True).paths == ("public_html",)


def test_downloads_take_neither_a_target_nor_a_database_name(snapshot: Snapshot) -> None:
    found = errors(
        snapshot,
        {"parts": [{"kind": "databases", "name": "bob_wp"}], "target": "overwrite", "database_name": "bob_x"},
        for_download=True,
    )
    assert set(found) == {"target", "database_name"}


def test_config_parts_are_skipped_by_a_restore_and_kept_by_a_download(snapshot: Snapshot) -> None:
    request = validate_request(snapshot, {"whole_account": True, "confirm_overwrite": True})
    plan = build_plan(snapshot, request)
    assert plan.whole_home
    assert plan.databases == ["bob_wp", "bob_shop"]
    assert plan.db_users is None
    assert plan.skipped == [("dns_zones: bob.com", CONFIG_REASON)]
    download = build_plan(
        snapshot,
        validate_request(snapshot, {"whole_account": True}, for_download=True),
        for_download=True,
    )
    assert download.config == [("dns_zones", "bob.com")]
    assert download.skipped == []
    mailbox = build_plan(
        snapshot,
        validate_request(snapshot, {"parts": [{"kind": "email_accounts", "name": "info@bob.com"}]}),
    )
    assert (mailbox.whole_home, mailbox.mailboxes, mailbox.db_users) == (False, ["info@bob.com"], set())


def test_queueing_creates_an_item_for_the_backups_own_account_with_the_request(snapshot: Snapshot) -> None:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("client", password="x")
    request = validate_request(
        snapshot, {"paths": ["public_html"], "target": "overwrite", "confirm_overwrite": True}
    )

    item = queue_restore(snapshot, request, user)
    download = queue_download(
        snapshot,
        validate_request(snapshot, {"parts": [{"kind": "dns_zones", "name": "bob.com"}]}, for_download=True),
        user,
    )

    assert (item.kind, item.status, item.account, item.snapshot, item.requested_by) == (
        QueueItem.Kind.RESTORE,
        QueueItem.Status.PENDING,
        snapshot.account,
        snapshot,
        user,
    )
    assert item.params == {
        "parts": [],
        "paths": ["public_html"],
        "target": "overwrite",
        "confirm_overwrite": True,
    }
    assert validate_request(snapshot, item.params) == request
    assert download.kind == QueueItem.Kind.DOWNLOAD
    assert download.params == {"parts": [{"kind": "dns_zones", "name": "bob.com"}], "paths": []}


# --- database names and grants (pure parsing; nothing is run) ---------------------------------------


def test_only_the_accounts_own_databases_may_be_written() -> None:
    assert account_may_use("bob", [], "bob_wp")
    assert account_may_use("bob", ["wordpress"], "wordpress")
    assert not account_may_use("bob", [], "bobby_wp")
    assert not account_may_use("bob", [], "alice_wp")
    assert not account_may_use("bob", ["mysql"], "mysql")
    assert not account_may_use("bob", [], "bob_wp`.x")


def test_grant_patterns_match_only_the_database_itself() -> None:
    assert grant_pattern("bob_wp") == "bob\\_wp"
    assert grant_pattern("a%b") == "a\\%b"


class _Recorder:
    """Stands in for the server: records statements, answers 'no such user'."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def query(self, sql: str, database: str = "") -> list[list[str]]:
        self.statements.append(sql)
        return [["0"]]

    def importer(self, database: str, **_options: object):  # pragma: no cover - not reached without hashes
        raise AssertionError("no password statements expected")


def test_grants_outside_the_account_are_skipped_with_reasons() -> None:
    sql = "\n".join(
        [
            "-- cPanel mysql backup",
            "GRANT ALL PRIVILEGES ON `bob\\_wp`.* TO 'bob_wp'@'localhost';",
            "GRANT ALL PRIVILEGES ON *.* TO 'bob_wp'@'localhost';",
            "GRANT ALL PRIVILEGES ON `mysql`.* TO 'bob_wp'@'localhost';",
            "GRANT ALL PRIVILEGES ON `bob%`.* TO 'bob_wp'@'localhost';",
            "GRANT FILE ON `bob\\_wp`.* TO 'bob_wp'@'localhost';",
            "GRANT ALL PRIVILEGES ON `bob\\_wp`.* TO 'bob_wp'@'localhost' WITH GRANT OPTION;",
            "GRANT ALL PRIVILEGES ON `bob\\_wp`.* TO 'root'@'localhost';",
            "GRANT ALL PRIVILEGES ON `bob\\_wp`.* TO 'bob'@'localhost';",
            "CREATE USER 'bob_x'@'%';",
            "DROP DATABASE bob_wp;",
        ]
    )
    server = _Recorder()

    outcome = restore_grants(server, account_name="bob", mysql_sql=sql)  # type: ignore[arg-type]

    reasons = [reason for _what, reason in outcome.skipped]
    assert len(outcome.skipped) == 9 + 1  # every line but the comment and the one fine grant; and ...
    assert sum("only USAGE is restored on *.*" in r for r in reasons) == 1
    assert sum("grants are restored only on databases bob_" in r for r in reasons) == 2
    assert sum("privileges FILE" in r for r in reasons) == 1
    assert sum("WITH GRANT OPTION" in r for r in reasons) == 1
    assert sum("only database users named bob_" in r for r in reasons) == 2
    assert sum("not a GRANT statement" in r for r in reasons) == 2
    # ... its user, which does not exist and has no password in the backup: not created, not granted
    assert outcome.skipped[-1] == ("bob_wp@localhost", "no password hash in the backup; user not created")
    assert outcome.applied == []
    assert not any(s.startswith("GRANT") for s in server.statements)


def test_definer_clauses_are_rewritten_in_statement_heads_only() -> None:
    out = bytearray()

    class Sink:
        def write(self, data: bytes | bytearray | memoryview) -> int:
            out.extend(data)
            return len(data)

    sql = (
        b"/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n"
        b"INSERT INTO t VALUES ('DEFINER=`root`@`localhost`');\n"
        b"/*!50003 CREATE*/ /*!50017 DEFINER='x'@'%'*/ /*!50003 TRIGGER tr BEFORE INSERT ON t */;;\n"
        b"CREATE DEFINER=admin@localhost PROCEDURE p() SELECT 1;\n"
    )
    rewriter = DefinerFilter(Sink())
    for start in range(0, len(sql), 7):  # arbitrary pieces: clauses cut across writes
        rewriter.write(sql[start : start + 7])
    rewriter.close()

    assert bytes(out) == (
        b"/*!50013 DEFINER=CURRENT_USER SQL SECURITY DEFINER */\n"
        b"INSERT INTO t VALUES ('DEFINER=`root`@`localhost`');\n"
        b"/*!50003 CREATE*/ /*!50017 DEFINER=CURRENT_USER*/ /*!50003 TRIGGER tr BEFORE INSERT ON t */;;\n"
        b"CREATE DEFINER=CURRENT_USER PROCEDURE p() SELECT 1;\n"
    )
    assert rewriter.rewritten == 3
