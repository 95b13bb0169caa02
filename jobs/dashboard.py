"""What the admin's home page shows: which accounts are at risk, what failed, what runs.

Everything comes from a fixed number of aggregate queries, whatever the number of accounts,
jobs or backups: the page is the first thing an admin of a server with hundreds of accounts
opens, so it must not issue a query per row.

An account is covered by the enabled, scheduled jobs that include it. Per job, a good backup
is a complete, unflagged backup of the account in the job's cycle (on a destination that is
not disabled). A job allows its schedule's interval plus a grace of one more interval and an
hour (a run may start late and take long, one slow run is not an alarm). An account is red
when, for one of its jobs, its newest good backup is older than that, or it has none, or the
job's last finished run failed for it after its newest good backup.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from destinations import cron
from destinations.models import Destination
from jobs.backup import coverage
from jobs.models import Snapshot

from .models import Account, BackupJob, QueueItem

Status = QueueItem.Status

GRACE = timedelta(hours=1)
# The interval is the longest gap between the next runs: eight runs span a whole week for any
# daily schedule, so a weekdays-only schedule is not red on Sundays.
INTERVAL_RUNS = 8
FAILURE_WINDOW = timedelta(hours=24)
FAILURES_SHOWN = 50
NEXT_RUNS_SHOWN = 10
# How FTP connection failures read in a queue item's error (destinations/ftp/control.py: ConnectFailed,
# LoginFailed, TlsFailed): a failed run whose error says one of these means the destination
# could not be reached, not that an account's data was at fault.
CONNECTION_ERRORS = (
    "could not connect to",
    "no answer from",
    "could not be resolved",
    "closed the connection before greeting",
    "no FTP greeting came",
    "refused the username or password",
    "refused the login",
    "requires TLS",
    "TLS handshake",
    "TLS certificate",
)


def schedule_interval(expression: str, now: datetime) -> timedelta | None:
    """The longest time between two consecutive runs of the cron `expression` among its next
    runs; None when it never runs."""
    runs: list[datetime] = []
    moment: datetime | None = now
    while moment is not None and len(runs) < INTERVAL_RUNS:
        moment = cron.next_run(expression, moment)
        if moment is not None:
            runs.append(moment)
    if len(runs) < 2:
        return None
    return max(later - earlier for earlier, later in itertools.pairwise(runs))


def allowance(interval: timedelta) -> timedelta:
    """How old a job's newest good backup may be: its interval, plus one interval and an hour."""
    return interval + interval + GRACE


@dataclass
class Problem:
    job: BackupJob
    reason: str  # "never", "overdue", "failed"
    newest: datetime | None
    allowed: timedelta
    run: QueueItem | None = None


@dataclass
class AccountRow:
    account: Account
    problems: list[Problem] = field(default_factory=list)


@dataclass
class Dashboard:
    at_risk: list[AccountRow]
    not_scheduled: list[Account]
    healthy: int
    failures: list[QueueItem]
    in_progress: list[QueueItem]
    next_runs: list[tuple[datetime, BackupJob]]
    stored_by_destination: list[dict[str, Any]]
    stored_by_account: list[dict[str, Any]]
    unreachable: list[dict[str, Any]]


def _failed_accounts(run: QueueItem) -> set[str] | None:
    """The usernames the run failed for; None when it failed as a whole (all its accounts)."""
    if run.status == Status.FAILED and not (run.result or {}).get("accounts"):
        return None
    rows = (run.result or {}).get("accounts") or []
    return {
        str(row.get("account")) for row in rows if isinstance(row, dict) and row.get("status") == "failed"
    }


def covered_accounts(job: BackupJob, accounts: dict[int, Account], listed: list[int]) -> list[Account]:
    """The accounts a run of `job` backs up, from rows already loaded (no query per job), by
    the rule the runs use (jobs/backup/coverage.py): all accounts or the listed ones, filtered."""
    return coverage.choose(job, accounts.values(), listed).accounts


def is_connection_error(error: str) -> bool:
    return any(phrase.lower() in error.lower() for phrase in CONNECTION_ERRORS)


def build(now: datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    accounts = list(Account.objects.order_by("username"))
    by_pk = {account.pk: account for account in accounts}
    last_run = QueueItem.objects.filter(
        job=OuterRef("pk"),
        kind=QueueItem.Kind.BACKUP,
        status__in=(Status.COMPLETED, Status.PARTIAL, Status.FAILED),
    ).order_by("-finished", "-pk")
    jobs = list(
        BackupJob.objects.select_related("destination").annotate(
            last_run_id=Subquery(last_run.values("pk")[:1])
        )
    )
    members: dict[int, list[int]] = defaultdict(list)
    for job_id, account_id in BackupJob.accounts.through.objects.values_list("backupjob_id", "account_id"):
        members[job_id].append(account_id)
    runs = QueueItem.objects.in_bulk([job.last_run_id for job in jobs if job.last_run_id])
    newest = {
        (row["account_id"], row["job_uuid"]): row["newest"]
        for row in Snapshot.objects.filter(
            state=Snapshot.State.COMPLETE,
            flags=[],
            destination__disabled=False,
            account__isnull=False,
            job_uuid__isnull=False,
        )
        .values("account_id", "job_uuid")
        .annotate(newest=Max("created"))
        .order_by()
    }

    rows = {account.pk: AccountRow(account) for account in accounts}
    scheduled: set[int] = set()
    next_runs: list[tuple[datetime, BackupJob]] = []
    intervals: dict[str, timedelta | None] = {}
    for job in jobs:
        if not (job.enabled and job.schedule.strip()):
            continue
        upcoming = cron.next_run(job.schedule, now)
        if upcoming is not None:
            next_runs.append((upcoming, job))
        if job.schedule not in intervals:
            intervals[job.schedule] = schedule_interval(job.schedule, now)
        interval = intervals[job.schedule]
        if interval is None:
            continue
        allowed = allowance(interval)
        run = runs.get(job.last_run_id) if job.last_run_id else None
        failed = _failed_accounts(run) if run is not None else set()
        for account in covered_accounts(job, by_pk, members.get(job.pk, [])):
            account_id = account.pk
            scheduled.add(account_id)
            good = newest.get((account_id, job.uuid))
            # Without a good backup, the clock runs from when the account joined (or the job
            # was made): a new account is not red before its first scheduled run.
            since = good or max(account.created, job.created)
            problem = None
            if now - since > allowed:
                problem = Problem(
                    job,
                    "overdue" if good else "never",
                    good,
                    allowed,
                    run if run and run.status != Status.COMPLETED else None,
                )
            elif (
                run is not None
                and (failed is None or account.username in failed)
                and run.finished is not None
                and run.finished > since
            ):
                problem = Problem(job, "failed", good, allowed, run)
            if problem is not None:
                rows[account_id].problems.append(problem)

    at_risk = [row for row in rows.values() if row.problems]
    not_scheduled = [account for account in accounts if account.pk not in scheduled]
    next_runs.sort(key=lambda pair: (pair[0], pair[1].name))

    failures = list(
        QueueItem.objects.filter(
            status__in=(Status.FAILED, Status.PARTIAL), finished__gte=now - FAILURE_WINDOW
        )
        .select_related("job", "destination", "account")
        .order_by("-finished")[:FAILURES_SHOWN]
    )
    return Dashboard(
        at_risk=at_risk,
        not_scheduled=not_scheduled,
        healthy=len(scheduled) - sum(1 for row in at_risk if row.account.pk in scheduled),
        failures=failures,
        in_progress=in_progress(),
        next_runs=next_runs[:NEXT_RUNS_SHOWN],
        stored_by_destination=_stored_by_destination(),
        stored_by_account=_stored_by_account(by_pk),
        unreachable=_unreachable(now),
    )


def in_progress() -> list[QueueItem]:
    """Running items first (oldest first), then the pending ones."""
    return list(
        QueueItem.objects.filter(status__in=(Status.RUNNING, Status.PENDING))
        .select_related("job", "destination", "account")
        .order_by("-status", "created")
    )


def _stored_by_destination() -> list[dict[str, Any]]:
    rows: Any = (
        Destination.objects.annotate(
            stored=Sum("snapshots__size"), backups=Count("snapshots"), newest=Max("snapshots__created")
        )
        .values("pk", "name", "engine", "disabled", "stored", "backups", "newest")
        .order_by("name")
    )
    return list(rows)


def _stored_by_account(by_pk: dict[int, Account]) -> list[dict[str, Any]]:
    """Bytes per account name (orphans found in backups included), largest first."""
    by_username = {account.username: account for account in by_pk.values()}
    rows = (
        Snapshot.objects.values("account_name")
        .annotate(stored=Sum("size"), backups=Count("pk"))
        .order_by("-stored", "account_name")
    )
    return [{**row, "account": by_username.get(row["account_name"])} for row in rows]


def _unreachable(now: datetime) -> list[dict[str, Any]]:
    """Destinations whose saved settings last failed Validate, or whose runs of the last 24
    hours failed to connect; with the newest such error."""
    recent: list[Any] = list(
        QueueItem.objects.filter(
            status=Status.FAILED, finished__gte=now - FAILURE_WINDOW, destination__isnull=False
        )
        .exclude(error="")
        .values("pk", "destination_id", "error", "finished")
        .order_by("-finished")
    )
    connection_failures: dict[int, dict[str, Any]] = {}
    for row in recent:
        if row["destination_id"] not in connection_failures and is_connection_error(row["error"]):
            connection_failures[row["destination_id"]] = row
    destinations = Destination.objects.filter(
        Q(validated_ok=False) | Q(pk__in=list(connection_failures))
    ).order_by("name")
    return [
        {"destination": destination, "failure": connection_failures.get(destination.pk)}
        for destination in destinations
    ]
