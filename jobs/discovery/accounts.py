"""Account discovery, the panel's side: make the Account table match what `host.scan()` found
on the server (new accounts, changed ones, removed ones), as a queue item or directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs import mysql, queue
from jobs.dbserver.client import MysqlError
from jobs.models import Account, QueueItem
from jobs.ownership import Owners

from .host import SERVER_DATABASES, DiscoveryFailed, Scan, scan

# --- the panel's accounts ---------------------------------------------------------------------


def fill_databases(found: Scan, owners: Owners, server: Any) -> None:
    """Databases and users of accounts without a cPanel map, from the database server's grants
    (its databases and users), through the ownership rule. Unreachable: reported, and those
    accounts keep the databases they had."""
    missing = [f for f in found.accounts if f.databases is None]
    if not missing:
        return
    try:
        databases, users = server.grants_catalog()
    except MysqlError as exc:
        found.bad("database server", f"not reachable ({exc}); databases of accounts without a map unchanged")
        return
    by_account: dict[str, tuple[list[str], list[str]]] = {}
    for name in databases:
        owner = None if name in SERVER_DATABASES else owners.database_owner(name)
        if owner is not None:
            by_account.setdefault(owner, ([], []))[0].append(name)
    for name in users:
        owner = owners.user_owner(name)
        if owner is not None:
            by_account.setdefault(owner, ([], []))[1].append(name)
    for f in missing:
        dbs, dbusers = by_account.get(f.username, ([], []))
        f.databases, f.database_users = sorted(set(dbs)), sorted(set(dbusers))


@dataclass
class Summary:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    returned: list[str] = field(default_factory=list)
    unchanged: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "returned": self.returned,
            "unchanged": self.unchanged,
        }


def apply(found: Scan, *, now: Any = None) -> Summary:
    """Make the Account table match what discovery found. Fields an admin set stay as they
    are; accounts added by hand are never marked removed; a removed account keeps its row and
    its backups (removed_at says since when)."""
    now = now or timezone.now()
    summary = Summary()
    existing = {a.username: a for a in Account.objects.all()}
    new: list[Account] = []
    changed: list[Account] = []
    fields = ["source", "removed_at", *Account.DISCOVERED_FIELDS]
    for f in found.accounts:
        values: dict[str, Any] = {
            "home": f.home,
            "reseller": f.reseller,
            "domains": f.domains,
            "suspended": f.suspended,
            "plan": f.plan,
        }
        if f.databases is not None:
            values["databases"] = f.databases
        if f.database_users is not None:
            values["database_users"] = f.database_users
        account = existing.get(f.username)
        if account is None:
            new.append(Account(username=f.username, source=f.source, **values))
            summary.added.append(f.username)
            continue
        before = [getattr(account, name) for name in fields]
        if account.removed_at is not None:
            summary.returned.append(f.username)
        account.removed_at = None
        account.source = f.source
        for name, value in values.items():
            if name not in (account.admin_fields or []):
                setattr(account, name, value)
        if [getattr(account, name) for name in fields] != before:
            changed.append(account)
            if f.username not in summary.returned:
                summary.updated.append(f.username)
        else:
            summary.unchanged += 1
    seen = {f.username for f in found.accounts} | found.unsure
    gone = [
        a
        for a in existing.values()
        if a.source in (Account.Source.CPANEL, Account.Source.SYSTEM)
        and a.removed_at is None
        and a.username not in seen
    ]
    for account in gone:
        account.removed_at = now
        changed.append(account)
        summary.removed.append(account.username)
    with transaction.atomic():
        Account.objects.bulk_create(new, batch_size=500)
        Account.objects.bulk_update(changed, fields, batch_size=500)
    return summary


def discover(*, root: str | None = None, now: Any = None, server: Any = None) -> tuple[Scan, Summary]:
    """Scan the server and apply what was found (the service behind the task, the page and
    the API)."""
    rows = list(Account.objects.values_list("username", "databases", "removed_at", "source"))
    known = [username for username, _, removed_at, _ in rows if removed_at is None]
    found = scan(root, known=known)
    found_names = {f.username for f in found.accounts}
    listed = {f.username: f.databases for f in found.accounts if f.databases}
    listed.update(
        {u: list(dbs or []) for u, dbs, removed_at, _ in rows if u not in found_names and removed_at is None}
    )
    owners = Owners.of(found_names | set(known), listed)
    fill_databases(found, owners, server or mysql.server())
    return found, apply(found, now=now)


def queue_discovery(*, requested_by: Any = None) -> QueueItem:
    """Queue a discovery, or answer the one already pending or running."""
    with transaction.atomic():
        current = (
            QueueItem.objects.select_for_update()
            .filter(
                kind=QueueItem.Kind.DISCOVERY, status__in=[QueueItem.Status.PENDING, QueueItem.Status.RUNNING]
            )
            .first()
        )
        if current is not None:
            return current
        return queue.enqueue(QueueItem.Kind.DISCOVERY, title="Find accounts", requested_by=requested_by)


def run(item: QueueItem, reporter: queue.Reporter) -> dict[str, Any]:
    """The queue item's body: discover, log what changed and every problem found."""
    reporter.log(f"Reading the accounts of the server under {settings.HOST_ROOT}")
    try:
        found, summary = discover()
    except DiscoveryFailed as exc:
        raise RuntimeError(f"Discovery stopped, nothing changed: {exc}") from None
    reporter.log(
        f"{'cPanel' if found.kind == Account.Source.CPANEL else 'System'} server: "
        f"{len(found.accounts)} accounts, {len(summary.added)} new, {len(summary.updated)} updated, "
        f"{len(summary.removed)} removed, {len(summary.returned)} back"
    )
    for problem in found.problems:
        reporter.log(f"warning: {problem}")
    if found.dropped:
        reporter.log(f"warning: … and {found.dropped} more problems")
    if summary.removed:
        accounts_removed(summary.removed, item)
    result = {"server": found.kind, "found": len(found.accounts), **summary.as_dict()}
    result["problems"] = found.problems + ([f"… and {found.dropped} more"] if found.dropped else [])
    return result


def accounts_removed(usernames: list[str], item: QueueItem | None) -> None:
    """Tell the admin which accounts vanished from the server: one message per discovery run
    (a reseller closing 50 accounts is one event), naming each account."""
    from jobs.notify import events as notifications

    days = settings.REMOVED_ACCOUNT_RETENTION_DAYS
    kept = (
        f"Their backups stay on the destinations for {days} days, then Backupsite deletes them "
        "(locked backups stay)."
        if days
        else "Their backups stay on the destinations."
    )
    notifications.notify(
        notifications.Event.ACCOUNT_REMOVED,
        title=(
            f"Account {usernames[0]} is gone from the server"
            if len(usernames) == 1
            else f"{len(usernames)} accounts are gone from the server"
        ),
        account=usernames[0] if len(usernames) == 1 else "",
        details=[*(f"gone: {name}" for name in usernames[:200]), kept],
        item=item,
        key=f"discovery:{item.pk}" if item is not None else "",
    )
