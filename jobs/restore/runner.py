"""Running a restore: the queue item's checks (`load_run`: the snapshot, the account it goes
into, the request checked again, its plan), then one pass over the backup from its source into
the sinks (home folder, database server).

A backup is only ever restored into its own account (the snapshot's account; a queue item
naming another account, an archive that names another account, a backup that is not
restorable, or file parts for an account without a home folder here are refused). A client
restores only what the account's uid could read on the live system (``ownership.ReadCheck``);
the rest is skipped with the reason. An admin restores everything.

The destination's FTP session comes from `open_session` (the real one unless a caller passes
another factory).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from backupsite import access
from destinations.formats import cpanel, native
from destinations.formats.cpanel.tarsafe.common import ArchiveError
from destinations.formats.native.common import Session
from destinations.localfs import SafeTree
from destinations.models import Destination, Engine
from destinations.sessions import open_session as open_destination_session
from jobs.models import Snapshot

from .. import queue
from ..models import Account, QueueItem
from .outcome import Outcome, RestoreRefused
from .plan import Plan, RestoreRequest, build_plan
from .request import load_request
from .sinks import database
from .sinks.home import ArchiveHome, HomeTarget, write_native
from .sources.cpanel import archive_stream, check_account, member_selector
from .sources.native import manifest_of

SessionFactory = Callable[[Destination], contextlib.AbstractContextManager[Session]]


def by_admin(item: QueueItem) -> bool:
    """Whether an admin asked for `item`: only then are files the account cannot read included."""
    return access.is_staff(item.requested_by) if item.requested_by is not None else False


def restore_target(item: QueueItem, snapshot: Snapshot) -> Account:
    """The account to restore into: always the snapshot's own; refuses everything else."""
    account = snapshot.account
    if account is None:
        raise RestoreRefused("The account of this backup is not known on this server.")
    if item.account_id != account.pk:
        raise RestoreRefused("The queue item names another account than the backup's; refused.")
    # Queued by a client, run later: by then the account may belong to another client (or the
    # client may be switched off), and a request of theirs must not write into it any more.
    requester = item.requested_by
    if (
        requester is not None
        and not requester.is_staff
        and (not requester.is_active or account.owner_id != requester.pk)
    ):
        raise RestoreRefused(
            f"Account {account.username} no longer belongs to {requester.get_username()}, who "
            "asked for this; refused."
        )
    if snapshot.account_name != account.username:
        raise RestoreRefused(
            f"The backup belongs to {snapshot.account_name}, not {account.username}; refused."
        )
    if not snapshot.restorable:
        raise RestoreRefused("This backup is not complete or has problems; it cannot be restored.")
    if snapshot.destination.disabled:
        raise RestoreRefused(f"Destination {snapshot.destination} is disabled.")
    return account


def load_run(
    item: QueueItem, *, for_download: bool = False
) -> tuple[Snapshot, Account, RestoreRequest, Plan]:
    """What a restore or download worker starts from: the snapshot, the account to restore
    into, the checked request and its plan; RestoreRefused when it must not run."""
    snapshot = (
        Snapshot.objects.select_related("destination", "account").filter(pk=item.snapshot_id or 0).first()
    )
    if snapshot is None:
        raise RestoreRefused("The backup is no longer in the index.")
    account = restore_target(item, snapshot)
    request = load_request(snapshot, item.params, for_download=for_download)
    plan = build_plan(snapshot, request, for_download=for_download)
    plan.admin = by_admin(item)
    return snapshot, account, request, plan


@contextlib.contextmanager
def aborts() -> Iterator[None]:
    """An admin's abort (BackupAborted) ends the queue item as aborted."""
    try:
        yield
    except native.BackupAborted as exc:
        raise queue.Aborted(str(exc) or "Aborted by an admin.") from None


def run(
    item: QueueItem, reporter: queue.Reporter, *, open_session: SessionFactory = open_destination_session
) -> dict[str, Any]:
    """The restore task's body (jobs.tasks.run_restore); `open_session` opens the destination's
    FTP session."""
    snapshot, account, _request, plan = load_run(item)
    outcome = Outcome()
    for path, reason in plan.skipped:
        outcome.skip(path, reason)
    reporter.log(
        f"Restoring {snapshot.path} into account {account.username} "
        f"({'over the current files' if plan.overwrite else 'into a new folder'})"
    )
    if snapshot.damaged:
        reporter.log(
            "Warning: this backup is damaged (integrity check of "
            f"{snapshot.verified_at:%Y-%m-%d %H:%M %Z}): what is intact is restored, the rest is listed as skipped"
        )
    progress = queue.EngineProgress(reporter)
    with aborts(), open_session(snapshot.destination) as session:
        if snapshot.engine == Engine.NATIVE:
            restore_native(snapshot, account, plan, session, progress, outcome)
        else:
            restore_cpanel(snapshot, account, plan, session, progress, outcome)
    targets = [outcome.folder] if outcome.folder else []
    targets += [f"database {db['target']}" for db in outcome.databases if db.get("status") == "restored"]
    outcome.target = ", ".join(targets) or outcome.target
    reporter.log(f"Done: {outcome.restored} restored, {outcome.skipped_count} skipped")
    return outcome.result()


def restore_native(
    snapshot: Snapshot,
    account: Account,
    plan: Plan,
    session: Session,
    progress: queue.EngineProgress,
    outcome: Outcome,
) -> None:
    """A native backup: its files through ``native.materialise`` (only the chunks of the chosen
    files are read), then its databases, each streamed from the destination into the server."""
    manifest = manifest_of(snapshot, account, session)
    if plan.wants_files:
        write_native(snapshot, account, manifest, plan, session, progress, outcome)
    database.restore_native(account, plan, session, snapshot.path, manifest, progress, outcome)


def restore_cpanel(
    snapshot: Snapshot,
    account: Account,
    plan: Plan,
    session: Session,
    progress: queue.EngineProgress,
    outcome: Outcome,
) -> None:
    """A cPanel archive, in one streaming pass whatever is chosen: what is chosen is written as
    it streams past (home files through SafeTree into the target folder, database dumps
    straight into the server, no local copy); ``mysql.sql`` and the mail account files are kept
    in memory (capped) and applied after the pass."""
    top = str(snapshot.meta.get("top", ""))
    with contextlib.ExitStack() as stack:
        target: HomeTarget | None = None
        tree: SafeTree | None = None
        if plan.wants_files:
            target = stack.enter_context(HomeTarget(account, new_folder=not plan.overwrite))
            tree = stack.enter_context(target.tree())
            outcome.folder = target.display
            progress.log(f"Files go to {target.display}")
        home = ArchiveHome(account, plan, progress, outcome, target, tree)
        databases = database.ArchiveDatabases(account, plan, progress, outcome)
        problems: list[cpanel.Problem] = []
        try:
            with archive_stream(session, snapshot, progress) as stream:
                for member, data in cpanel.iter_members(
                    stream, member_selector(plan), top=top, problems=problems
                ):
                    progress.reporter.check_abort()
                    name = member.name
                    if name.startswith("cp/"):
                        check_account(member, account)
                    elif name.startswith("homedir/"):
                        home.member(name[len("homedir/") :], member, data)
                    else:
                        databases.member(name, member, data)
        except ArchiveError as exc:
            outcome.skip("(archive)", f"the archive is damaged: {exc.message}", failure=True)
        except RestoreRefused:
            if target is not None:
                target.discard_new_folder()  # nothing of another account's archive stays behind
            raise
        finally:
            for problem in problems[:200]:
                outcome.skip(problem.member, f"refused: {problem.reason}", failure=True)
        databases.finish_missing()
        home.finish_mail_files()
        databases.finish_grants()
        home.finish_dirs()
