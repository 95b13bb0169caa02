"""SQL for the database server, written here: quoting, the names an account may use, and the
small statements restores and grants are built from.

Plain Python (no Django).
"""

from __future__ import annotations

import re

from ..ownership import Owners
from .client import MysqlError, MysqlServer, check_name

SYSTEM_DATABASES = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
_CHARSET = re.compile(r"CHARACTER\s+SET\s+(\w+)", re.IGNORECASE)
_COLLATE = re.compile(r"COLLATE\s+(\w+)", re.IGNORECASE)


# --- names ----------------------------------------------------------------------------------


def account_may_use(
    account_name: str, listed: list[str], database: str, owners: Owners | None = None
) -> bool:
    """Whether restoring into `database` stays within the account's own databases, by the
    ownership rule over `owners` (every account; None: this account is the only one known)."""
    if database.lower() in SYSTEM_DATABASES:
        return False
    try:
        check_name(database)
    except MysqlError:
        return False
    if owners is None:
        owners = Owners.of([account_name], {account_name: listed})
    return owners.owns_database(account_name, database)


def grant_pattern(database: str) -> str:
    """A database name as a GRANT pattern that matches only itself (`_` and `%` escaped)."""
    return database.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


def literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def charset_of(create_statement: str) -> tuple[str, str]:
    """(charset, collation) from a cPanel `mysql/<db>.create` line; "" when not stated."""
    charset = _CHARSET.search(create_statement)
    collation = _COLLATE.search(create_statement)
    return (charset[1] if charset else "", collation[1] if collation else "")


def create_database(server: MysqlServer, name: str, charset: str, collation: str) -> None:
    spec = ""
    if charset and re.fullmatch(r"\w+", charset):
        spec += f" CHARACTER SET {charset}"
    if collation and re.fullmatch(r"\w+", collation):
        spec += f" COLLATE {collation}"
    server.query(f"CREATE DATABASE {quoted(check_name(name))}{spec}")


def select(server: MysqlServer, query: str, **values: str) -> list[list[str]]:
    """Run `query` with its `{name}` placeholders filled in as quoted string literals."""
    return server.query(query.format(**{key: literal(value) for key, value in values.items()}))


def exists(server: MysqlServer, name: str) -> bool:
    rows = select(
        server, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {name}", name=name
    )
    return bool(rows) and rows[0][0] != "0"


def database_charset(server: MysqlServer, name: str) -> tuple[str, str]:
    rows = select(
        server,
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
        "WHERE SCHEMA_NAME = {name}",
        name=name,
    )
    return (rows[0][0], rows[0][1]) if rows and len(rows[0]) == 2 else ("", "")


def execute(admin: MysqlServer, script: str, database: str = "information_schema") -> None:
    """Run trusted SQL written here through the client's stdin (secrets stay out of `ps`)."""
    with admin.importer(database) as pipe:
        pipe.write(script.encode())


def drop(server: MysqlServer, name: str) -> None:
    server.query(f"DROP DATABASE IF EXISTS {quoted(check_name(name))}")
