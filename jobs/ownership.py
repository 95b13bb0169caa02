"""Which account owns a database or a database user: one rule, used everywhere.

On a hosting server one account's name can be the start of another's (``alice`` and
``alice_x``), so a name prefix alone is ambiguous: ``alice_x_wp`` starts with ``alice_`` too.
The rule:

* A name belongs to the account whose ``<username>_`` is the **longest** prefix of it, or to the
  account named exactly like it (cPanel names an account's main database user like the account).
  So ``alice_x_wp`` belongs to ``alice_x`` as soon as that account exists, and ``alice`` never
  owns it; ``alice_xy`` is still ``alice``'s (``alice_x_`` is not a prefix of it).
* A database name that starts with no account's prefix belongs to the one account that lists
  it (``Account.databases``); listed by several accounts, it belongs to none of them.
* Anything else belongs to no account: nobody but an admin's own tools touches it.

An account created later therefore takes over the names that are its own; callers say so
where the change shows (a backup run's log and result, the account form's message).

This module is plain Python: the caller passes every account's username (and its listed
databases), e.g. from ``Account.owners()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Owners:
    """Every account's username (and the databases each lists), to answer who owns a name."""

    usernames: frozenset[str]
    listed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # database -> accounts listing it

    @classmethod
    def of(cls, usernames: Iterable[str], listed: Mapping[str, Iterable[str]] | None = None) -> Owners:
        """`listed` maps an account's username to the databases it lists."""
        by_database: dict[str, list[str]] = {}
        for username, names in (listed or {}).items():
            for name in names:
                if username not in by_database.setdefault(name, []):
                    by_database[name].append(username)
        return cls(frozenset(usernames), {db: tuple(who) for db, who in by_database.items()})

    def by_name(self, name: str) -> str | None:
        """The account that owns `name` by its name alone: the exact account name, else the
        longest `<username>_` prefix; None when no account's name fits."""
        if name in self.usernames:
            return name
        best: str | None = None
        for end, char in enumerate(name):
            if char == "_" and name[:end] in self.usernames:
                best = name[:end]  # later underscores give longer prefixes
        return best

    def database_owner(self, name: str) -> str | None:
        """The one account that owns database `name`, or None."""
        owner = self.by_name(name)
        if owner is not None:
            return owner
        listers = self.listed.get(name, ())
        return listers[0] if len(listers) == 1 else None

    def user_owner(self, name: str) -> str | None:
        """The one account that owns database user `name`, or None (users are never listed)."""
        return self.by_name(name)

    def owns_database(self, account: str, name: str) -> bool:
        return self.database_owner(name) == account

    def owns_user(self, account: str, name: str) -> bool:
        return self.user_owner(name) == account

    def why_not_database(self, account: str, name: str) -> str:
        """Why database `name` is not `account`'s, for messages and results."""
        owner = self.database_owner(name)
        if owner is not None:
            return f"{name} belongs to account {owner}, not {account}"
        listers = self.listed.get(name, ())
        if len(listers) > 1:
            return f"{name} is listed on several accounts ({', '.join(sorted(listers))}), so it is none of theirs"
        return f"{name} is not a database of account {account} (names start with {account}_, or are listed on it)"

    def why_not_user(self, account: str, name: str) -> str:
        owner = self.user_owner(name)
        if owner is not None:
            return f"database user {name} belongs to account {owner}, not {account}"
        return f"database user {name} is not one of account {account} (names start with {account}_)"
