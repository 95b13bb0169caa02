"""Loading into the database server: each chosen database through ``jobs.dbserver.load`` (see
there for how a live database survives a broken backup), database users and grants of cPanel's
``mysql.sql`` through ``jobs.dbserver.grants``.

Databases go into the server from settings (``jobs.mysql.server``), over the database of the
same name, or into ``database_name``. Only what the account owns by ``ownership``'s rule
(``Account.owners()``, passed in): a backup of ``alice`` may hold ``alice_x_wp`` (dumped before
account ``alice_x`` existed); a whole-account restore skips it with the reason. A native
database streams through ``native.download_dump`` (size and sha256 verified); a cPanel dump is
loaded as it streams past in the archive (no local copy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import zstandard

from backupsite.errors import Aborted, Error, message_of
from destinations.formats import native
from destinations.formats.cpanel.tarsafe.common import Member
from destinations.formats.cpanel.tarsafe.reader import MemberData
from destinations.formats.native.common import Session

from ... import mysql
from ...dbserver import grants, load, sql
from ...dbserver.client import MysqlError
from ...models import Account
from ...queue import EngineProgress
from ..outcome import Outcome
from ..plan import Plan, part_label
from ..sources import cpanel as cpanel_source

DumpWriter = Callable[[Any], None]


def restore_databases(
    account: Account,
    plan: Plan,
    progress: EngineProgress,
    outcome: Outcome,
    jobs: list[tuple[str, DumpWriter, str, str]],
) -> None:
    """Restore each (source name, dump writer, charset, collation) in turn; failures are recorded."""
    for source, write_dump, charset, collation in jobs:
        restore_database_part(account, plan, progress, outcome, source, write_dump, charset, collation)


def restore_database_part(
    account: Account,
    plan: Plan,
    progress: EngineProgress,
    outcome: Outcome,
    source: str,
    write_dump: DumpWriter,
    charset: str = "",
    collation: str = "",
) -> None:
    target = plan.database_name or source
    # A new name is created only over an existing database when the request says overwrite;
    # the backup's own name always means "over the existing database".
    overwrite = plan.overwrite if plan.database_name else True
    progress.reporter.check_abort()
    progress.log(f"Database {source}: restoring into {target}")
    try:
        done = load.restore_database(
            mysql.server(),
            account_name=account.username,
            listed=[str(name) for name in account.databases or []],
            owners=Account.owners(),
            source=source,
            target=target,
            overwrite=overwrite,
            write_dump=write_dump,
            charset=charset,
            collation=collation,
        )
    except (native.BackupAborted, Aborted):
        raise
    except (Error, OSError, KeyError, zstandard.ZstdError) as exc:
        message = message_of(exc)
        progress.log(f"Database {source}: failed: {message}")
        outcome.skip(part_label("databases", source), f"failed: {message}", failure=True)
        outcome.databases.append({"source": source, "target": target, "status": "failed", "error": message})
        return
    outcome.restored += 1
    entry: dict[str, Any] = {"source": source, "target": target, "status": "restored", "how": done.how}
    if done.notes:
        entry["notes"] = done.notes
    outcome.databases.append(entry)
    progress.log(f"Database {source}: restored into {target} ({done.how})")


# --- a native backup ----------------------------------------------------------------------------


def restore_native(
    account: Account,
    plan: Plan,
    session: Session,
    backup_path: str,
    manifest: native.Manifest,
    progress: EngineProgress,
    outcome: Outcome,
) -> None:
    """The plan's databases of a native backup, each downloaded as it is loaded."""
    sizes = {db.name: db.size for db in manifest.databases}
    restore_databases(
        account,
        plan,
        progress,
        outcome,
        [
            (db, _dump_writer(session, backup_path, manifest, db, progress, sizes.get(db, 0)), "", "")
            for db in plan.databases
        ],
    )


def _dump_writer(
    session: Session, path: str, manifest: native.Manifest, database: str, progress: EngineProgress, size: int
) -> Any:
    def write(out: Any) -> None:
        progress.stage_done()
        native.download_dump(session, path, manifest, database, _Counted(out, progress, size))

    return write


class _Counted:
    """Passes a dump on to the loader, reporting its bytes as progress."""

    def __init__(self, out: Any, progress: EngineProgress, total: int) -> None:
        self.out = out
        self.progress = progress
        self.total = total
        self.done = 0

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.done += len(data)
        self.progress.progress(bytes_done=self.done, bytes_total=self.total, files_done=0, files_total=0)
        return len(data)


# --- a cPanel archive ---------------------------------------------------------------------------


class ArchiveDatabases:
    """The database members of a cPanel archive (``mysql/<db>.create``, ``mysql/<db>.sql[.gz]``,
    ``mysql.sql`` and ``mysql.sql-auth.json``), loaded or kept as they stream past;
    `finish_missing` and `finish_grants` after the pass."""

    def __init__(self, account: Account, plan: Plan, progress: EngineProgress, outcome: Outcome) -> None:
        self.account = account
        self.plan = plan
        self.progress = progress
        self.outcome = outcome
        self.charsets: dict[str, tuple[str, str]] = {}
        self.databases_seen: set[str] = set()
        self.grants = ""
        self.auth = ""

    def member(self, name: str, member: Member, data: MemberData) -> None:
        if name.startswith("mysql/") and member.type == "file":
            self._database(name, member, data)
            return
        if name in ("mysql.sql", "mysql.sql-auth.json") and member.type == "file":
            text = cpanel_source.read_capped(data, member.size, cpanel_source.MAX_GRANTS_FILE)
            if text is None:
                self.outcome.skip(name, "too large to restore grants from", failure=True)
            elif name == "mysql.sql":
                self.grants = text.decode("utf-8", "replace")
            else:
                self.auth = text.decode("utf-8", "replace")

    def _database(self, name: str, member: Member, data: MemberData) -> None:
        dump = cpanel_source.dump_db(name, (*cpanel_source.DUMP_SUFFIXES, ".create"))
        if dump is None or dump[0] not in self.plan.databases:
            return
        db, suffix = dump
        if suffix == ".create":
            text = cpanel_source.read_capped(data, member.size, 64 * 1024)
            if text is not None:
                self.charsets[db] = sql.charset_of(text.decode("utf-8", "replace"))
            return
        if db in self.databases_seen:
            self.outcome.skip(name, "a second dump of this database is not loaded", failure=True)
            return
        self.databases_seen.add(db)

        def write_dump(out: Any) -> None:
            if suffix == ".sql.gz":
                for block in cpanel_source.gunzip(data):
                    out.write(block)
                return
            cpanel_source.copy_exact(data, member.size, out, "the archive ends inside a database dump")

        charset, collation = self.charsets.get(db, ("", ""))
        restore_database_part(
            self.account, self.plan, self.progress, self.outcome, db, write_dump, charset, collation
        )

    def finish_missing(self) -> None:
        """Each chosen database whose dump the archive did not hold, skipped as a failure."""
        for db in self.plan.databases:
            if db not in self.databases_seen:
                self.outcome.skip(part_label("databases", db), "its dump is not in the archive", failure=True)

    def finish_grants(self) -> None:
        """The chosen database users and their grants, from the mysql.sql kept during the pass."""
        if self.plan.db_users is None or self.plan.db_users:
            self._grants()

    def _grants(self) -> None:
        if not self.grants:
            self.outcome.skip("db_users", "mysql.sql is not in the archive", failure=True)
            return
        users = None if self.plan.db_users is None else set(self.plan.db_users)
        try:
            done = grants.restore_grants(
                mysql.server(),
                account_name=self.account.username,
                mysql_sql=self.grants,
                auth_json=self.auth,
                users=users,
                owners=Account.owners(),
            )
        except MysqlError as exc:
            self.outcome.skip("db_users", f"failed: {exc}", failure=True)
            return
        self.outcome.db_users.extend(done.applied)
        self.outcome.restored += len(done.applied)
        for what, reason in done.skipped:
            self.outcome.skip(part_label("db_users", what), reason, failure=reason.startswith("failed"))
        for user in sorted((users or set()) - {a.split("@", 1)[0] for a in done.applied}):
            if not any(s["path"].startswith(part_label("db_users", user)) for s in self.outcome.skipped):
                self.outcome.skip(part_label("db_users", user), "not in mysql.sql", failure=True)
