"""Restoring databases from backups into the MySQL/MariaDB server.

A dump in a backup is untrusted SQL (it came from a destination, and for cPanel from another
machine). It is therefore never run with the panel's own (administrative) login:

* Loading: a temporary user ``bs_restore_<random>`` is created for each database restored,
  with a random password and ``ALL`` on exactly the database being loaded (name escaped, so
  ``_`` is not a wildcard), and nothing else. The client gets its login through a private
  option file, runs ``--sandbox --binary-mode --local-infile=0`` (no shell escapes, no
  ``source``/``tee``, no LOAD DATA LOCAL), and the user is dropped in a ``finally``. A dump that
  tries ``CREATE DATABASE other``, ``USE other``, ``GRANT ...`` or ``SET PASSWORD`` fails there
  and the restore of that database fails with the server's message.
* ``DEFINER=user@host`` clauses (views, triggers, routines, events) are rewritten on the fly
  to ``DEFINER=CURRENT_USER`` (the temporary user may not name anybody else). After the load the
  objects are re-created as the account's own MySQL user (``'<account>'@'localhost'``, cPanel's
  naming), so nothing is left owned by a user that no longer exists, and nothing ever runs with
  more rights than the account has.

Over an existing database (the live one is never lost to a broken backup):

1. The dump is loaded into a fresh staging database ``bsr_<random>``. Everything that can go
   wrong with the backup (a download that breaks off, a checksum mismatch, a damaged archive,
   SQL the server refuses) goes wrong here, and then only the staging database is dropped.
2. Only then is the live database replaced. When the staging database holds only tables (the
   usual case), one atomic ``RENAME TABLE`` moves the live tables out and the restored ones in
   (the live database's own views, triggers, routines and events, which would block or outlive
   the move, are dropped first). Otherwise the live database is dropped, re-created and loaded
   from the staging database (a local dump, again as the temporary user); if that second load
   fails the staging database is kept and the error names it, so the restored data is never
   lost either.

A database that does not exist yet is loaded straight into its own name (dropped again when the
load fails). Only databases of the account are read from a backup and written: the ownership
rule (``ownership``) gives each name to exactly one account (the longest ``<account>_`` prefix,
or the one account that lists it), never a system database.

The SQL helpers (quoting, the names an account may use) are in ``sql``; users and grants
in ``grants``. Plain Python (no Django): callers pass the server and the accounts in.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from backupsite.errors import Error

from ..ownership import Owners
from . import sql
from .client import MysqlError, MysqlServer, check_name
from .sql import account_may_use, execute, grant_pattern

logger = logging.getLogger(__name__)

TEMP_USER_PREFIX = "bs_restore_"
STAGING_PREFIX = "bsr_"
_HEAD_LIMIT = 4 * 1024 * 1024  # a statement head longer than this is passed on unchanged
_IDENT = r"(?:`(?:[^`]|``)*`|'(?:[^'\\]|\\.|'')*'|\"[^\"]*\"|[\w.$%-]+)"
_DEFINER = re.compile(rb"DEFINER\s*=\s*" + _IDENT.encode() + rb"\s*@\s*" + _IDENT.encode(), re.IGNORECASE)
_HEAD_STARTS = (b"/*!", b"CREATE", b"ALTER")


class DatabaseRestoreError(Error):
    """A database could not be restored; the message says why and what was left as it was."""


class Writable(Protocol):
    def write(self, data: bytes | bytearray | memoryview, /) -> object: ...


# --- the temporary user -------------------------------------------------------------------


@dataclass
class Loader:
    """The temporary user: `server` is logged in as it; `account` is 'user'@'host'."""

    server: MysqlServer
    account: str
    name: str
    host: str

    def grant(self, admin: MysqlServer, database: str) -> None:
        admin.query(f"GRANT ALL PRIVILEGES ON `{grant_pattern(check_name(database))}`.* TO {self.account}")


@contextlib.contextmanager
def temporary_loader(admin: MysqlServer) -> Iterator[Loader]:
    """A user with a random name and password and no privileges yet; dropped on leaving."""
    # The host part the server sees for this machine, so the new user matches our logins.
    rows = admin.query("SELECT SUBSTRING_INDEX(USER(), '@', -1)")
    host = rows[0][0] if rows and rows[0] and rows[0][0] else "localhost"
    name = TEMP_USER_PREFIX + secrets.token_hex(6)
    password = secrets.token_urlsafe(24)
    account = f"{sql.literal(name)}@{sql.literal(host)}"
    execute(admin, f"CREATE USER {account} IDENTIFIED BY {sql.literal(password)};\n")
    try:
        yield Loader(admin.as_user(name, password), account, name, host)
    finally:
        try:
            admin.query(f"DROP USER IF EXISTS {account}")
        except MysqlError:  # do not hide why the restore stopped; say what is left behind
            logger.error("could not drop the temporary restore user %s; drop it by hand", account)


# --- DEFINER clauses ------------------------------------------------------------------------


class DefinerFilter:
    """Passes SQL through, rewriting `DEFINER=user@host` to `DEFINER=CURRENT_USER` in statement
    heads (lines starting with `/*!`, CREATE or ALTER). Data lines (INSERT ...) pass untouched,
    so a post that happens to contain the words is not changed.

    One regex pass and one write per chunk: dumps hold millions of short lines.
    """

    def __init__(self, out: Writable) -> None:
        self.out = out
        self.carry = b""  # an unfinished line that is (or may be) a statement head
        self.passing = False  # inside an unfinished line that is not a head
        self.rewritten = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        chunk = bytes(data)
        pieces: list[bytes] = []
        if self.passing:
            newline = chunk.find(b"\n")
            if newline < 0:
                self.out.write(chunk)
                return len(chunk)
            pieces.append(chunk[: newline + 1])
            chunk = chunk[newline + 1 :]
            self.passing = False
        if self.carry:
            chunk, self.carry = self.carry + chunk, b""
        last = chunk.rfind(b"\n")
        if last >= 0:
            pieces.append(self._rewrite(chunk[: last + 1]))
        tail = chunk[last + 1 :]
        if tail:
            start = tail.lstrip()[:6].upper()
            if len(start) < 6 and len(tail) <= _HEAD_LIMIT:
                self.carry = tail  # too short to tell yet
            elif start.startswith(_HEAD_STARTS) and len(tail) <= _HEAD_LIMIT:
                self.carry = tail
            else:
                pieces.append(self._rewrite(tail) if start.startswith(_HEAD_STARTS) else tail)
                self.passing = True
        if pieces:
            self.out.write(b"".join(pieces))
        return len(data)

    def _rewrite(self, block: bytes) -> bytes:
        def replace(match: re.Match[bytes]) -> bytes:
            line = block.rfind(b"\n", 0, match.start()) + 1
            if block[line : line + 64].lstrip()[:6].upper().startswith(_HEAD_STARTS):
                self.rewritten += 1
                return b"DEFINER=CURRENT_USER"
            return match[0]

        return _DEFINER.sub(replace, block)

    def close(self) -> None:
        if self.carry:
            self.out.write(self._rewrite(self.carry))
            self.carry = b""


# --- one database -----------------------------------------------------------------------------


@dataclass
class DatabaseOutcome:
    source: str
    target: str
    replaced: bool  # an existing database was replaced
    how: str  # "new", "renamed tables" or "reloaded"
    reowned: int = 0
    notes: list[str] = field(default_factory=list)


DumpWriter = Callable[[Writable], None]


def restore_database(
    admin: MysqlServer,
    *,
    account_name: str,
    listed: list[str],
    source: str,
    target: str,
    overwrite: bool,
    write_dump: DumpWriter,
    charset: str = "",
    collation: str = "",
    owners: Owners | None = None,
) -> DatabaseOutcome:
    """Load the dump `write_dump(out)` produces into `target` (see the module docstring).

    `overwrite`: replace `target` when it exists; otherwise an existing `target` is refused.
    `owners`: every account, for the ownership rule (None: only this account is known).
    Raises DatabaseRestoreError (nothing live changed, unless the message says otherwise).
    """
    if owners is None:
        owners = Owners.of([account_name], {account_name: listed})
    for name in (source, target):
        if not account_may_use(account_name, listed, name, owners):
            raise DatabaseRestoreError(f"{owners.why_not_database(account_name, name)}; nothing was written")
    exists = sql.exists(admin, target)
    if exists and not overwrite:
        raise DatabaseRestoreError(f"database {target} already exists; nothing was written")
    outcome = DatabaseOutcome(source=source, target=target, replaced=exists, how="new")
    if exists and not charset:
        charset, collation = sql.database_charset(admin, target)
    staging = STAGING_PREFIX + secrets.token_hex(6) if exists else target
    with temporary_loader(admin) as loader:
        sql.create_database(admin, staging, charset or "utf8mb4", collation)
        try:
            loader.grant(admin, staging)
            _load(loader, staging, write_dump)
            if exists:
                _replace(admin, loader, staging, target, outcome)
            outcome.reowned = _reown(admin, target, loader, account_name, outcome)
        except BaseException as exc:
            if not isinstance(exc, StagingKept):
                with contextlib.suppress(MysqlError):
                    sql.drop(admin, staging)
            raise
        if exists:
            sql.drop(admin, staging)
    return outcome


class StagingKept(DatabaseRestoreError):
    """The backup is loaded into a staging database that is kept (its name is in the message)."""


def _load(loader: Loader, database: str, write_dump: DumpWriter) -> None:
    try:
        with loader.server.importer(database, untrusted=True) as pipe:
            rewriter = DefinerFilter(pipe)
            write_dump(rewriter)
            rewriter.close()
    except MysqlError as exc:
        raise DatabaseRestoreError(_short(str(exc))) from exc


def _short(message: str) -> str:
    """The client's ERROR line (it also echoes the failing statement between dashes)."""
    errors = [line for line in message.splitlines() if line.startswith("ERROR")]
    head = message.split(" failed:", 1)[0]
    return f"{head} failed: {errors[-1]}" if errors else message


_OBJECTS = (
    "SELECT 'VIEW', TABLE_NAME, DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {db} "
    "UNION ALL SELECT 'TRIGGER', TRIGGER_NAME, DEFINER FROM information_schema.TRIGGERS "
    "WHERE TRIGGER_SCHEMA = {db} "
    "UNION ALL SELECT ROUTINE_TYPE, ROUTINE_NAME, DEFINER FROM information_schema.ROUTINES "
    "WHERE ROUTINE_SCHEMA = {db} "
    "UNION ALL SELECT 'EVENT', EVENT_NAME, DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {db}"
)
_KINDS = frozenset({"VIEW", "TRIGGER", "PROCEDURE", "FUNCTION", "EVENT"})


def _objects(admin: MysqlServer, database: str) -> list[tuple[str, str, str]]:
    """(kind, name, definer) of every view, trigger, routine and event of `database`."""
    rows = sql.select(admin, _OBJECTS, db=database)
    return [
        (row[0], _unbatch(row[1]), _unbatch(row[2])) for row in rows if len(row) == 3 and row[0] in _KINDS
    ]


def _tables(admin: MysqlServer, database: str) -> list[str]:
    rows = sql.select(
        admin,
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {db} "
        "AND TABLE_TYPE IN ('BASE TABLE', 'SEQUENCE', 'SYSTEM VERSIONED')",
        db=database,
    )
    return [_unbatch(row[0]) for row in rows if row]


def _replace(admin: MysqlServer, loader: Loader, staging: str, target: str, outcome: DatabaseOutcome) -> None:
    """Put the verified staging database in place of `target`."""
    if not _objects(admin, staging):
        _drop_non_tables(admin, target)
        old = STAGING_PREFIX + "old_" + secrets.token_hex(6)
        sql.create_database(admin, old, "utf8mb4", "")
        try:
            moves = [
                f"{sql.quoted(target)}.{sql.quoted(t)} TO {sql.quoted(old)}.{sql.quoted(t)}"
                for t in _tables(admin, target)
            ]
            moves += [
                f"{sql.quoted(staging)}.{sql.quoted(t)} TO {sql.quoted(target)}.{sql.quoted(t)}"
                for t in _tables(admin, staging)
            ]
            if moves:
                admin.query("RENAME TABLE " + ", ".join(moves))  # one statement: all or nothing
            charset, collation = sql.database_charset(admin, staging)
            if charset:
                admin.query(
                    f"ALTER DATABASE {sql.quoted(target)} CHARACTER SET {charset} COLLATE {collation}"
                )
        finally:
            sql.drop(admin, old)
        outcome.how = "renamed tables"
        return
    # Views, triggers, routines or events: reload the verified copy into a fresh database.
    charset, collation = sql.database_charset(admin, staging)
    sql.drop(admin, target)
    sql.create_database(admin, target, charset, collation)
    loader.grant(admin, target)
    try:
        with admin.dump(staging) as dump:

            def copy(out: Writable) -> None:
                while block := dump.read(1024 * 1024):
                    out.write(block)

            _load(loader, target, copy)
    except (MysqlError, DatabaseRestoreError) as exc:
        raise StagingKept(
            f"the backup was loaded into {staging}, but moving it to {target} failed: {exc}. "
            f"The restored data is kept in database {staging}"
        ) from exc
    outcome.how = "reloaded"


def _drop_non_tables(admin: MysqlServer, database: str) -> None:
    for kind, name, _definer in _objects(admin, database):
        admin.query(f"DROP {kind} IF EXISTS {sql.quoted(database)}.{sql.quoted(name)}")


def _unbatch(value: str) -> str:
    """Undo the escaping of the client's --batch output (\\n, \\t, \\0, \\\\)."""
    if "\\" not in value:
        return value
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "0": "\0", "\\": "\\"}.get(m[1], m[0]), value)


def _reown(
    admin: MysqlServer, database: str, loader: Loader, account_name: str, outcome: DatabaseOutcome
) -> int:
    """Re-create objects the temporary user defined as the account's own user."""
    definer = f"{loader.name}@{loader.host}"
    new = f"{sql.quoted(account_name)}@`localhost`"
    q = sql.quoted(database)
    found = [(kind, name) for kind, name, owner in _objects(admin, database) if owner == definer]
    done = 0
    for kind, name in found:
        try:
            rows = admin.query(f"SHOW CREATE {kind} {q}.{sql.quoted(name)}")
            row = rows[0]
            if kind == "VIEW":
                create, mode = _unbatch(row[1]), ""
            else:  # SHOW CREATE EVENT has time_zone before the statement
                create, mode = _unbatch(row[3 if kind == "EVENT" else 2]), _unbatch(row[1])
            replaced, count = _DEFINER.subn(lambda _m: f"DEFINER={new}".encode(), create.encode())
            if count != 1:
                raise MysqlError("its definition names no single DEFINER")
            statement = replaced.decode()
            if kind == "VIEW":
                script = statement.replace("CREATE ", "CREATE OR REPLACE ", 1) + ";\n"
            else:
                script = (
                    f"SET SESSION sql_mode = {sql.literal(mode)};\nDROP {kind} {sql.quoted(name)};\n"
                    f"DELIMITER ;;\n{statement};;\nDELIMITER ;\n"
                )
            execute(admin, script, database)
            done += 1
        except (MysqlError, IndexError) as exc:
            outcome.notes.append(f"{kind.lower()} {name}: could not be given to {account_name}: {exc}")
    return done
