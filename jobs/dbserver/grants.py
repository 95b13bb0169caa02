"""Restoring database users and grants from cPanel's ``mysql.sql`` into the MySQL/MariaDB server.

Database users and grants (cPanel's ``mysql.sql``): nothing in it is ever run. Every line is
parsed, and only ``GRANT`` lines for users the account owns (``<account>_…``, not its main user,
not ``<account>_x…`` when account ``<account>_x`` exists), on single databases it owns (no
wildcards) or ``USAGE`` on ``*.*``, for hosts the account already has (this machine, or a host
one of its users has on the live server), with ordinary database privileges and at most a
``mysql_native_password`` hash, are turned into statements built here. Everything else is
skipped with a reason.

Plain Python (no Django): callers pass the server and the accounts in.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field

from ..ownership import Owners
from . import sql
from .client import MysqlError, MysqlServer, check_name
from .sql import account_may_use, execute, grant_pattern

_PRIVILEGES = frozenset(
    {
        "ALL",
        "ALL PRIVILEGES",
        "USAGE",
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "CREATE",
        "DROP",
        "REFERENCES",
        "INDEX",
        "ALTER",
        "CREATE TEMPORARY TABLES",
        "LOCK TABLES",
        "EXECUTE",
        "CREATE VIEW",
        "SHOW VIEW",
        "CREATE ROUTINE",
        "ALTER ROUTINE",
        "EVENT",
        "TRIGGER",
        "DELETE HISTORY",
    }
)
_GRANT = re.compile(
    r"^GRANT\s+(?P<privs>[A-Za-z ,]+?)\s+ON\s+"
    r"(?P<target>\*\.\*|`(?P<db>[^`]+)`\.(?:\*|`(?P<table>[^`]+)`))\s+"
    r"TO\s+'(?P<user>[^'\\]+)'@'(?P<host>[^'\\]+)'"
    r"(?:\s+IDENTIFIED\s+BY\s+PASSWORD\s+'(?P<hash>[^'\\]*)')?"
    r"(?P<rest>[^;]*);?\s*$",
    re.IGNORECASE,
)
_USER = re.compile(r"[A-Za-z0-9_]{1,80}")
_HOST = re.compile(r"[A-Za-z0-9.%_:-]{1,255}")
_HASH = re.compile(r"\*[0-9A-Fa-f]{40}")
_TABLE = re.compile(r"[A-Za-z0-9_$-]{1,64}")


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass
class GrantsOutcome:
    applied: list[str] = field(default_factory=list)  # 'user'@'host' restored
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (what, reason)


def account_hosts(admin: MysqlServer, account_name: str, owners: Owners) -> frozenset[str]:
    """The hosts database users may be restored for: this machine, and every host the
    account's own users (its main user included) have on the live server now.

    A backup is not trusted to say where an account's users may log in from: a remote host
    (`%`, an address) comes back only when the account already has it here, which on cPanel is
    what the account's "Remote MySQL" hosts give its main user.
    """
    rows = sql.select(
        admin,
        "SELECT User, Host FROM mysql.user WHERE User = {user} OR User LIKE {pattern}",
        user=account_name,
        pattern=grant_pattern(account_name) + "\\_%",
    )
    found = {row[1] for row in rows if len(row) == 2 and owners.owns_user(account_name, row[0])}
    return LOOPBACK_HOSTS | {host for host in found if _HOST.fullmatch(host)}


def restore_grants(
    admin: MysqlServer,
    *,
    account_name: str,
    mysql_sql: str,
    auth_json: str = "",
    users: set[str] | None = None,
    owners: Owners | None = None,
    hosts: frozenset[str] | None = None,
) -> GrantsOutcome:
    """Re-create, from cPanel's `mysql.sql`, the users of `users` (None: every user in it).

    Nothing in the file is run: each GRANT line is parsed and, when its user and database are
    the account's by the ownership rule over `owners` (every account; None: only this one is
    known) and its host is one of `hosts` (None: `account_hosts`), re-built here. Everything
    else is skipped with a reason.
    """
    outcome = GrantsOutcome()
    prefix = f"{account_name}_"
    if owners is None:
        owners = Owners.of([account_name])
    if hosts is None:
        hosts = account_hosts(admin, account_name, owners)
    shown_hosts = ", ".join(sorted(hosts))
    hashes: dict[tuple[str, str], str] = {}
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        for user, user_hosts in (json.loads(auth_json) if auth_json else {}).items():
            for host, info in user_hosts.items():
                if info.get("plugin", "mysql_native_password") == "mysql_native_password":
                    hashes[(str(user), str(host))] = str(info.get("pass", ""))
    grants: dict[tuple[str, str], list[str]] = {}
    for raw in mysql_sql.splitlines():
        line = raw.strip()
        if not line or line.startswith(("--", "#", "/*")):
            continue
        shown = line if len(line) <= 200 else line[:197] + "..."
        match = _GRANT.match(line)
        if match is None:
            outcome.skipped.append((shown, "not a GRANT statement this restore understands"))
            continue
        user, host = match["user"], match["host"]
        if users is not None and user not in users:
            continue
        if not _USER.fullmatch(user) or not user.startswith(prefix):
            outcome.skipped.append((f"{user}@{host}", f"only database users named {prefix}… are restored"))
            continue
        if not owners.owns_user(account_name, user):
            outcome.skipped.append((f"{user}@{host}", f"refused: {owners.why_not_user(account_name, user)}"))
            continue
        if not _HOST.fullmatch(host):
            outcome.skipped.append((f"{user}@{host}", "the host is not a plain host name or pattern"))
            continue
        if host not in hosts:
            outcome.skipped.append(
                (
                    f"{user}@{host}",
                    f"refused: host {host!r} is not one account {account_name}'s database users have on "
                    f"this server ({shown_hosts}); add it to the account first, then restore again",
                )
            )
            continue
        if match["rest"].strip():
            outcome.skipped.append((shown, f"refused: {match['rest'].strip()[:60]!r} is not restored"))
            continue
        privileges = [p.strip().upper() for p in match["privs"].split(",")]
        privileges = [" ".join(p.split()) for p in privileges]
        bad = [p for p in privileges if p not in _PRIVILEGES]
        if bad:
            outcome.skipped.append((shown, f"refused: privileges {', '.join(bad)} are not restored"))
            continue
        statement_target = "*.*"
        if match["target"] == "*.*":
            if privileges != ["USAGE"]:
                outcome.skipped.append((shown, "refused: only USAGE is restored on *.*"))
                continue
        else:
            database = _pattern_database(match["db"])
            if database is None or not account_may_use(account_name, [], database, owners):
                why = "" if database is None else f" ({owners.why_not_database(account_name, database)})"
                outcome.skipped.append(
                    (
                        shown,
                        f"refused: grants are restored only on databases {prefix}… of account "
                        f"{account_name}, each named exactly{why}",
                    )
                )
                continue
            table = match["table"]
            if table is not None and not _TABLE.fullmatch(table):
                outcome.skipped.append((shown, "refused: odd table name"))
                continue
            if table is None:
                statement_target = f"`{grant_pattern(database)}`.*"
            else:  # a table grant names its database literally, not as a pattern
                statement_target = f"{sql.quoted(database)}.{sql.quoted(table)}"
        password = match["hash"]
        if password is not None:
            if not _HASH.fullmatch(password):
                outcome.skipped.append((f"{user}@{host}", "the password hash is not mysql_native_password"))
                continue
            hashes[(user, host)] = password
        key = (user, host)
        grants.setdefault(key, [])
        if privileges != ["USAGE"]:
            grants[key].append(
                f"GRANT {', '.join(privileges)} ON {statement_target} TO {_account(user, host)}"
            )
    for (user, host), statements in grants.items():
        who = _account(user, host)
        password = hashes.get((user, host), "")
        try:
            if password and _HASH.fullmatch(password):
                execute(
                    admin,
                    f"CREATE USER IF NOT EXISTS {who} IDENTIFIED BY PASSWORD {sql.literal(password)};\n"
                    f"ALTER USER {who} IDENTIFIED BY PASSWORD {sql.literal(password)};\n",
                )
            else:
                rows = sql.select(
                    admin,
                    "SELECT COUNT(*) FROM mysql.user WHERE User = {user} AND Host = {host}",
                    user=user,
                    host=host,
                )
                if not rows or rows[0][0] == "0":
                    outcome.skipped.append(
                        (f"{user}@{host}", "no password hash in the backup; user not created")
                    )
                    continue
            for statement in statements:
                admin.query(statement)
        except MysqlError as exc:
            outcome.skipped.append((f"{user}@{host}", f"failed: {exc}"))
            continue
        outcome.applied.append(f"{user}@{host}")
    return outcome


def _pattern_database(pattern: str) -> str | None:
    """The one database a GRANT's database pattern names, or None when it is a wildcard.

    `\\_` and `\\%` are literal; `%` matches anything and is refused; a bare `_` (one any
    character to the server) is taken as the literal `_`, which grants less, never more.
    """
    name: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            name.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            return None
        else:
            name.append(char)
    if escaped:
        return None
    try:
        return check_name("".join(name))
    except MysqlError:
        return None


def _account(user: str, host: str) -> str:
    return f"{sql.literal(user)}@{sql.literal(host)}"
