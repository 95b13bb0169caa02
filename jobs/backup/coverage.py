"""Which accounts a backup run covers, decided when the run starts.

`all` (the default): every account on this server that has a home folder and was not removed,
so an account discovery found since the last run is backed up with no edit. `selected`: the
accounts the job lists (a removed one is still tried, and fails on its own, so the admin sees
it). Both are narrowed by the filters: `include` globs (any must match), `exclude` globs (none
may match), `resellers` (the account's reseller is one of them) and `skip_suspended`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from jobs.models import Account, BackupJob


@dataclass
class Coverage:
    accounts: list[Account]
    skipped: dict[str, str] = field(default_factory=dict)  # username -> why


def why_skipped(job: BackupJob, account: Account) -> str:
    """Why the job's filters leave `account` out; empty when they keep it."""
    name = account.username
    if job.include and not any(fnmatchcase(name, pattern) for pattern in job.include):
        return "matches none of the include patterns"
    matched = next((pattern for pattern in job.exclude if fnmatchcase(name, pattern)), None)
    if matched is not None:
        return f"excluded by {matched}"
    if job.resellers and account.reseller not in job.resellers:
        return f"reseller {account.reseller or '(none)'} is not one of {', '.join(job.resellers)}"
    if job.skip_suspended and account.suspended:
        return "suspended"
    return ""


def candidates(job: BackupJob, accounts: Iterable[Account], listed: Iterable[int]) -> list[Account]:
    """Before the filters: `listed` (the job's own account ids) for `selected`, else every
    account that is on this server (a home, not removed). From rows already loaded."""
    if job.accounts_mode == BackupJob.AccountsMode.SELECTED:
        chosen = set(listed)
        return [a for a in accounts if a.pk in chosen]
    return [a for a in accounts if a.home and a.removed_at is None]


def choose(job: BackupJob, accounts: Iterable[Account], listed: Iterable[int]) -> Coverage:
    """The accounts a run of `job` covers, from rows already loaded (the dashboard's way)."""
    coverage = Coverage(accounts=[])
    for account in sorted(candidates(job, accounts, listed), key=lambda a: a.username):
        why = why_skipped(job, account)
        if why:
            coverage.skipped[account.username] = why
        else:
            coverage.accounts.append(account)
    return coverage


def covered(job: BackupJob) -> Coverage:
    """The accounts a run of `job` starting now covers (a backup run's way)."""
    if job.accounts_mode == BackupJob.AccountsMode.SELECTED:
        rows = list(job.accounts.all())
    else:
        rows = list(Account.objects.filter(removed_at__isnull=True).exclude(home=""))
    return choose(job, rows, [a.pk for a in rows])
