"""The panel's MySQL/MariaDB server: the one BACKUPSITE_MYSQL_URL names (from the settings),
and the databases an account has on it. The server seam itself is ``jobs.dbserver`` (no Django);
this module reads the settings and passes the values in.
"""

from __future__ import annotations

from django.conf import settings

from .dbserver.client import MysqlServer
from .ownership import Owners


def server() -> MysqlServer:
    return MysqlServer.from_url(settings.MYSQL_URL)


def account_databases(username: str, listed: list[str], owners: Owners) -> tuple[list[str], list[str]]:
    """The databases to dump for `username`, and notes on the names it does not own.

    `listed` empty: the databases on the server whose names give them to the account by the
    ownership rule (`username_…`, but not `username_x_…` when account `username_x` exists).
    Listed: those the account still owns (an account created later may have taken one over).
    """

    def owned(candidates: list[str], where: str) -> tuple[list[str], list[str]]:
        names = [name for name in candidates if owners.owns_database(username, name)]
        notes = [
            f"{owners.why_not_database(username, name)}{where}; not backed up with {username}"
            for name in candidates
            if name not in names
        ]
        return names, notes

    if listed:
        return owned(listed, f" (listed on {username})")
    escaped = username.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    return owned(server().list_databases(f"{escaped}\\_%"), "")
