"""Who owns what a native backup restores, and what the account itself could read of it.

A native manifest records the home folder's (uid, gid) when it was backed up (the account's),
each entry's uid and gid when they differ from it, and the names of all those users and
groups on the backed-up system. A restore puts the owners back:

* The account's entries (no recorded owner, or the account's recorded id) go to the account's
  ids *now*: the owner and group of its home folder at restore time, so a uid that changed
  since the backup (a migration, a re-created account) still gets its files.
* Every other owner (root, another user, a group such as `nobody` on public_html) is looked
  up by its recorded name on this system, and taken by number when no user or group of that
  name exists here. Names win because numbers differ between servers; a name that does not
  exist here leaves the number (what `tar --numeric-owner` would do).
* Manifests written before owners were recorded have none: everything is the account's.

What a client may restore is what the account's uid could read on the live system, judged as
the kernel would with the owners above: the account's own entries always (it can chmod them);
another owner's by the group bits when the entry's group is one the account is in, else by the
other bits; files need read, folders read and execute, and nothing under a folder the account
cannot open is reachable. An admin restores everything.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Iterable
from dataclasses import dataclass

from .native.manifest import Entry, Manifest

Ids = tuple[int, int]


class SystemAccounts:
    """This system's user and group database (replace `system` in tests)."""

    def user_id(self, name: str) -> int | None:
        try:
            return pwd.getpwnam(name).pw_uid
        except KeyError:
            return None

    def group_id(self, name: str) -> int | None:
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            return None

    def groups_of(self, username: str, gid: int) -> set[int]:
        """The groups a login `username` with primary group `gid` is in (just `gid` when the
        system does not know the user)."""
        try:
            return set(os.getgrouplist(username, gid))
        except (OSError, OverflowError):
            return {gid}


system = SystemAccounts()


class Owners:
    """Recorded owners of a manifest's entries, mapped onto this system."""

    def __init__(self, manifest: Manifest, account: Ids, accounts: SystemAccounts | None = None) -> None:
        self.account = account
        self.recorded = manifest.owner
        self.users = manifest.users
        self.groups = manifest.groups
        self._accounts = accounts or system
        self._uids: dict[int, int] = {}
        self._gids: dict[int, int] = {}

    def of(self, entry: Entry) -> Ids:
        """The (uid, gid) `entry` gets on this system."""
        return self._uid(entry.uid), self._gid(entry.gid)

    def _uid(self, uid: int | None) -> int:
        if uid is None or (self.recorded is not None and uid == self.recorded[0]):
            return self.account[0]
        found = self._uids.get(uid)
        if found is None:
            name = self.users.get(uid)
            local = self._accounts.user_id(name) if name else None
            found = self._uids[uid] = uid if local is None else local
        return found

    def _gid(self, gid: int | None) -> int:
        if gid is None or (self.recorded is not None and gid == self.recorded[1]):
            return self.account[1]
        found = self._gids.get(gid)
        if found is None:
            name = self.groups.get(gid)
            local = self._accounts.group_id(name) if name else None
            found = self._gids[gid] = gid if local is None else local
        return found

    def label(self, entry: Entry) -> str:
        """user:group of `entry` as recorded, by name where the backup knew it."""
        uid = entry.uid if entry.uid is not None else (self.recorded or (None, None))[0]
        gid = entry.gid if entry.gid is not None else (self.recorded or (None, None))[1]
        user = self.users.get(uid, str(uid)) if uid is not None else "the account"
        group = self.groups.get(gid, str(gid)) if gid is not None else "the account's group"
        return f"{user}:{group}"


@dataclass(frozen=True)
class Hidden:
    """An entry left out of a client's restore or download, and why."""

    entry: Entry
    reason: str


def readable(entry: Entry, ids: Ids, account_uid: int, groups: set[int]) -> bool:
    """Whether the account could read `entry` itself (folders: open and list it)."""
    uid, gid = ids
    if uid == account_uid or account_uid == 0 or entry.type == "l":
        return True  # its own (it may chmod it); a link's own mode means nothing
    bits = (entry.mode >> 3) & 7 if gid in groups else entry.mode & 7
    need = 5 if entry.type == "d" else 4
    return bits & need == need


class ReadCheck:
    """Which entries of a manifest the account could read, following the folders above them.

    The account's groups come from `system.groups_of` (the system's group database) when the
    check is made.
    """

    def __init__(self, manifest: Manifest, owners: Owners, username: str) -> None:
        self.owners = owners
        self.account_uid = owners.account[0]
        self.groups = system.groups_of(username, owners.account[1])
        self._folders = {e.path: e for e in manifest.entries if e.type == "d"}
        self._closed: dict[bytes, bool] = {b"": False}

    def _can(self, entry: Entry) -> bool:
        return readable(entry, self.owners.of(entry), self.account_uid, self.groups)

    def closed(self, folder: bytes) -> bool:
        """Whether the account cannot reach inside `folder` (it or a folder above is closed)."""
        pending = []
        path = folder
        while path not in self._closed:
            pending.append(path)
            path = path.rpartition(b"/")[0]
        state = self._closed[path]
        for path in reversed(pending):
            if not state:
                entry = self._folders.get(path)
                state = entry is not None and not self._can(entry)
            self._closed[path] = state
        return self._closed[folder]

    def allowed(self, entry: Entry) -> bool:
        return not self.closed(entry.path.rpartition(b"/")[0]) and self._can(entry)

    def hidden(self, entries: Iterable[Entry]) -> list[Hidden]:
        """The entries of `entries` the account cannot read, topmost first: an entry under a
        folder already given is only counted in that folder's reason."""
        refused = sorted((e for e in entries if not self.allowed(e)), key=lambda e: e.path)
        tops: list[Entry] = []
        inside: dict[bytes, int] = {}
        for entry in refused:
            parent = entry.path.rpartition(b"/")[0]
            while parent and parent not in inside:
                parent = parent.rpartition(b"/")[0]
            if parent:
                inside[parent] += 1
                continue
            tops.append(entry)
            if entry.type == "d":
                inside[entry.path] = 0
        return [Hidden(entry, self._reason(entry, inside.get(entry.path, 0))) for entry in tops]

    def _reason(self, entry: Entry, below: int) -> str:
        tail = f" (with the {below} {'entry' if below == 1 else 'entries'} in it)" if below else ""
        if self._can(entry):
            return f"admin only: inside a folder the account cannot open{tail}"
        what = f"owned by {self.owners.label(entry)} with mode {entry.mode:04o}"
        if entry.type == "d":
            return f"admin only: a folder {what}, which the account cannot open{tail}"
        return f"admin only: {what}, which the account cannot read"


# --- cPanel archives --------------------------------------------------------------------------


class ArchiveOwners:
    """Owners for the home members of a cPanel archive, from the names its tar headers carry.

    The numbers in those headers are the cPanel server's and mean nothing here, so only names
    are used, and only where that is safe: a user name other than root becomes the account
    (a file handed to another user, perhaps another tenant, would let them write into this
    home); the group goes by name when that group exists here and is not another account's
    (`nobody` on public_html, `mail` on etc/ keep sites and mail working), else the account's.
    """

    def __init__(
        self, username: str, account: Ids, tenants: Iterable[str] = (), accounts: SystemAccounts | None = None
    ) -> None:
        self.username = username
        self.account = account
        self.tenants = set(tenants) - {username}
        self._accounts = accounts or system
        self._gids: dict[str, int] = {}

    def of(self, uname: str, gname: str) -> Ids:
        uid = 0 if uname == "root" else self.account[0]
        if gname in ("", self.username) or gname in self.tenants:
            return uid, self.account[1]
        gid = self._gids.get(gname)
        if gid is None:
            local = 0 if gname == "root" else self._accounts.group_id(gname)
            gid = self._gids[gname] = self.account[1] if local is None else local
        return uid, gid


class StreamCheck:
    """ReadCheck for members that stream past in archive order (a folder before its content,
    as tar writes them): what the account's uid could read, given each member's owner."""

    def __init__(self, username: str, account: Ids) -> None:
        self.account_uid = account[0]
        self.groups = system.groups_of(username, account[1])
        self._closed: list[str] = []

    def refused(self, rel: str, kind: str, mode: int, ids: Ids, label: str = "") -> str | None:
        """Why the account may not have home member `rel` (None: it may). A closed folder is
        given once; what lies in it is refused with an empty reason (count it, do not list it).
        `label`: the owner as the archive names it (user:group), for the reason."""
        if any(rel.startswith(folder + "/") for folder in self._closed):
            return ""
        entry = Entry(b"", "d" if kind == "dir" else "l" if kind == "symlink" else "f", mode, 0)
        if readable(entry, ids, self.account_uid, self.groups):
            return None
        owner = f"{label or f'{ids[0]}:{ids[1]}'} with mode {mode:04o}"
        if kind == "dir":
            self._closed.append(rel)
            return (
                f"admin only: a folder owned by {owner}, which the account cannot open (with what is in it)"
            )
        return f"admin only: owned by {owner}, which the account cannot read"
