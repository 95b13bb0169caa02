"""Downloads: a part, chosen files or a whole backup as one .tar.gz, prepared by a worker.

The file lies under ``DOWNLOADS_DIR/<random token>/`` (the token is 128 random bits, never
guessable), is offered at ``/downloads/<item id>/<token>/`` to the user who asked for it (the
view checks ``item.requested_by``), and is deleted ``DOWNLOAD_TTL_HOURS`` after it was made by
``expire_downloads``.

What it holds, whatever the engine:
* home files under ``homedir/`` (paths as in the file listing; symlinks as links; folders
  with their modes; setuid/setgid bits dropped; from native backups with the uids, gids and
  names they recorded),
* each database as ``databases/<db>.sql`` (the dump as the backup holds it),
* configuration parts of cPanel backups as their original archive files (``cron/<user>``,
  ``dnszones/<zone>.db``, ``va/<domain>``, ``proftpdpasswd``, ``cp/<user>``, ...); a whole cPanel
  backup keeps every member under its archive name (dumps under ``databases/``),
* for mailboxes chosen without the whole home, only those boxes' lines of
  ``etc/<domain>/passwd``, ``shadow`` and ``quota``.

A client's download leaves out what the account's uid could not read on the live system
(``sources.native.readable_files``; reported as skipped); an admin's holds everything.

Native backups are streamed into the tar.gz without staging: files are read in pack order
through ranged downloads (one transfer per pack for what is chosen), checked against their
sha256 (a mismatch fails the download: a tar cannot take bytes back). cPanel archives are read
once and the chosen members re-packed as they stream past. gzip runs at level 3
(``sinks.targz``).
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from destinations import names
from destinations.formats import cpanel, native
from destinations.formats.cpanel.tarsafe.common import ArchiveError, printable
from destinations.formats.native.common import Session
from destinations.localfs import UnsafePath, split_relative
from destinations.models import Engine
from destinations.sessions import open_session as open_destination_session
from jobs.models import Snapshot

from .. import queue
from ..models import Account, QueueItem
from ..queue import EngineProgress
from .outcome import Outcome
from .plan import MAX_MAIL_FILE, Plan
from .runner import SessionFactory, aborts, load_run
from .sinks.home import box_lines
from .sinks.targz import TarGzWriter, TarOwner
from .sources.cpanel import (
    DUMP_SUFFIXES,
    above_chosen,
    archive_stream,
    check_account,
    client_check,
    copy_exact,
    dump_db,
    home_owners,
    mail_file_domain,
    member_selector,
    owner_label,
    read_capped,
)
from .sources.native import (
    PackReader,
    account_ids,
    mail_file_entries,
    mailbox_folder,
    manifest_of,
    read_entry,
    readable_files,
)

TOKEN_RE = re.compile(r"[0-9a-f]{32}")


def download_url(item_id: int, token: str) -> str:
    try:
        return reverse("jobs:download", args=[item_id, token])
    except NoReverseMatch:
        return f"/downloads/{item_id}/{token}/"


def _downloads_dir() -> Path:
    return Path(settings.DOWNLOADS_DIR)


def _ttl() -> timedelta:
    return timedelta(hours=int(settings.DOWNLOAD_TTL_HOURS))


def run_download(
    item: QueueItem,
    reporter: queue.Reporter,
    *,
    open_session: SessionFactory = open_destination_session,
) -> dict[str, Any]:
    """The download task's body (jobs.tasks.run_download); `open_session` opens the
    destination's FTP session."""
    snapshot, account, request, plan = load_run(item, for_download=True)
    token = secrets.token_hex(16)
    folder = _downloads_dir() / token
    folder.mkdir(parents=True, mode=0o700)
    label = "backup" if request.everything else "selection"
    name = f"{account.username}-{snapshot.created:%Y%m%d-%H%M%S}-{label}.tar.gz"
    partial = folder / f".{name}.part"
    outcome = Outcome(target=name)
    for path, reason in plan.skipped:  # e.g. databases another account owns
        outcome.skip(path, reason)
    progress = EngineProgress(reporter)
    reporter.log(f"Preparing {name} from {snapshot.path}")
    try:
        with TarGzWriter(partial) as tar, open_session(snapshot.destination) as session, aborts():
            download = _Download(snapshot, account, plan, session, tar, progress, outcome)
            if snapshot.engine == Engine.NATIVE:
                _native(download)
            else:
                _cpanel(download, request.everything)
        result = outcome.result()
        partial.rename(folder / name)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    size = (folder / name).stat().st_size
    expires = timezone.now() + _ttl()
    result.update(
        {
            "url": download_url(item.pk, token),
            "expires": expires.isoformat(),
            "token": token,
            "file": name,
            "size": size,
        }
    )
    reporter.log(f"Ready: {name} ({size} bytes), until {timezone.localtime(expires):%Y-%m-%d %H:%M}")
    return result


def download_file(item: QueueItem, *, user: Any = None, now: datetime | None = None) -> Path | None:
    """The prepared file of download `item`, or None when there is none, it has expired, or
    `user` (when given: whoever fetches it) may not have it any more.

    A download is prepared for whoever asked, and fetched later: by then the account may
    belong to another client, who is the only client that may read its files now.
    """
    if user is not None and not may_fetch(item, user):
        return None
    if item.kind != QueueItem.Kind.DOWNLOAD or item.status not in (
        QueueItem.Status.COMPLETED,
        QueueItem.Status.PARTIAL,
    ):
        return None
    result = item.result if isinstance(item.result, dict) else {}
    token, name = str(result.get("token", "")), str(result.get("file", ""))
    if (
        not TOKEN_RE.fullmatch(token)
        or not name
        or "/" in name
        or name.startswith(".")
        or result.get("expired")
    ):
        return None
    expires = parse_datetime(str(result.get("expires", "")))
    if expires is None or expires <= (now or timezone.now()):
        return None
    path = _downloads_dir() / token / name
    try:
        if not path.is_file() or path.is_symlink():
            return None
    except OSError:
        return None
    return path


def may_fetch(item: QueueItem, user: Any) -> bool:
    """Whoever asked for the download, and (a client) only while they still own its account."""
    if not user.is_authenticated or item.requested_by_id != user.pk:
        return False
    if user.is_staff:
        return True
    owner = Account.objects.filter(pk=item.account_id or 0).values_list("owner_id", flat=True).first()
    return owner is not None and owner == user.pk


def expire_downloads(*, now: datetime | None = None) -> int:
    """Delete downloads older than DOWNLOAD_TTL_HOURS (and leftovers of failed runs); returns how many."""
    now = now or timezone.now()
    removed = 0
    live: set[str] = set()
    for item in QueueItem.objects.filter(kind=QueueItem.Kind.DOWNLOAD, result__has_key="token").only(
        "pk", "result"
    ):
        result = dict(item.result)
        token = str(result.get("token", ""))
        if not TOKEN_RE.fullmatch(token) or result.get("expired"):
            continue
        expires = parse_datetime(str(result.get("expires", "")))
        if expires is not None and expires > now:
            live.add(token)
            continue
        shutil.rmtree(_downloads_dir() / token, ignore_errors=True)
        result["expired"] = True
        QueueItem.objects.filter(pk=item.pk).update(result=result)
        removed += 1
    base = _downloads_dir()
    if base.is_dir():
        cutoff = (now - _ttl()).timestamp()
        for folder in base.iterdir():
            if folder.name in live or not TOKEN_RE.fullmatch(folder.name):
                continue
            with contextlib.suppress(FileNotFoundError):
                if folder.lstat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += 1
    return removed


# --- native -----------------------------------------------------------------------------------


@dataclass
class _Download:
    """What every step of writing one download works with."""

    snapshot: Snapshot
    account: Account
    plan: Plan
    session: Session
    tar: TarGzWriter
    progress: EngineProgress
    outcome: Outcome


def tar_owner(manifest: native.Manifest, entry: native.Entry) -> TarOwner | None:
    """The owner a native entry had, for its tar header: the numbers and names of the backed-up
    system (what `tar -x` as root maps by name, as a restore does); None for old backups."""
    if manifest.owner is None:
        return None
    uid = manifest.owner[0] if entry.uid is None else entry.uid
    gid = manifest.owner[1] if entry.gid is None else entry.gid
    return uid, gid, manifest.users.get(uid, ""), manifest.groups.get(gid, "")


def _native(download: _Download) -> None:
    snapshot, account, plan, tar, outcome = (
        download.snapshot,
        download.account,
        download.plan,
        download.tar,
        download.outcome,
    )
    boxes = [mailbox_folder(box) for box in plan.mailboxes]

    def wanted(path: bytes) -> bool:
        rel = names.from_bytes(path)
        return plan.covers_home_path(rel) or any(rel == b or rel.startswith(b + "/") for b in boxes)

    manifest = manifest_of(snapshot, account, download.session)
    manifest = readable_files(manifest, account, account_ids(account, manifest.owner), plan, wanted, outcome)
    chosen: list[native.Entry] = []
    for entry in manifest.entries:
        if not wanted(entry.path):
            continue
        try:
            split_relative(entry.path)
        except UnsafePath as exc:
            outcome.skip(entry.display, f"refused: {exc}", failure=True)
            continue
        chosen.append(entry)
    files = sorted(
        (e for e in chosen if e.type == "f"),
        key=lambda e: (e.chunks[0].pack, e.chunks[0].offset) if e.chunks else ("", 0),
    )
    total = sum(e.size for e in files) + sum(
        db.size for db in manifest.databases if db.name in plan.databases
    )
    done = 0
    for entry in chosen:
        if entry.type == "d":
            tar.add_dir(
                "homedir/" + names.from_bytes(entry.path),
                entry.mode,
                entry.mtime_ns // 1_000_000_000,
                tar_owner(manifest, entry),
            )
            outcome.restored += 1
    if files or plan.mailboxes:  # databases alone need no connection for packs
        _native_files(download, manifest, files, total)
        done = sum(e.size for e in files)
    for entry in chosen:
        if entry.type == "l" and entry.link is not None:
            tar.add_symlink(
                "homedir/" + names.from_bytes(entry.path),
                names.from_bytes(entry.link),
                entry.mtime_ns // 1_000_000_000,
                tar_owner(manifest, entry),
            )
            outcome.restored += 1
    _native_databases(download, manifest, done, total)


def _native_files(
    download: _Download, manifest: native.Manifest, files: list[native.Entry], total: int
) -> None:
    """Files in pack order, each checked against its sha256, then the mailboxes' mail lines."""
    tar, progress, outcome = download.tar, download.progress, download.outcome
    done = 0
    with download.session.connection() as conn:
        reader = PackReader(
            conn, download.snapshot.path, (chunk for entry in files for chunk in entry.chunks)
        )
        try:
            for number, entry in enumerate(files, start=1):
                progress.reporter.check_abort()
                with tar.file(
                    "homedir/" + names.from_bytes(entry.path),
                    entry.size,
                    entry.mode,
                    entry.mtime_ns // 1_000_000_000,
                    tar_owner(manifest, entry),
                ) as out:
                    for block in read_entry(reader, entry):
                        out.write(block)
                        done += len(block)
                outcome.restored += 1
                progress.progress(
                    bytes_done=done, bytes_total=total, files_done=number, files_total=len(files)
                )
            if download.plan.mailboxes:
                _native_mail_lines(manifest, download.plan, reader, tar, outcome)
        finally:
            reader.close()


def _native_databases(download: _Download, manifest: native.Manifest, done: int, total: int) -> None:
    plan, progress, outcome = download.plan, download.progress, download.outcome
    for info in manifest.databases:
        if info.name not in plan.databases:
            continue
        progress.reporter.check_abort()
        with download.tar.file(
            f"databases/{info.name}.sql", info.size, 0o600, int(manifest.created.timestamp())
        ) as out:
            native.download_dump(download.session, download.snapshot.path, manifest, info.name, out)
        done += info.size
        outcome.restored += 1
        progress.progress(bytes_done=done, bytes_total=total, files_done=0, files_total=0)
    missing = set(plan.databases) - {db.name for db in manifest.databases}
    for name in sorted(missing):
        outcome.skip(f"databases: {name}", "not in this backup", failure=True)


def _native_mail_lines(
    manifest: native.Manifest, plan: Plan, reader: PackReader, tar: TarGzWriter, outcome: Outcome
) -> None:
    for rel, entry, boxes in mail_file_entries(manifest, plan):
        if entry.size > MAX_MAIL_FILE:
            continue
        lines = box_lines(b"".join(read_entry(reader, entry)), boxes)
        if lines:
            tar.add_bytes("homedir/" + rel, b"".join(lines), entry.mode, entry.mtime_ns // 1_000_000_000)
            outcome.restored += 1


# --- cPanel -----------------------------------------------------------------------------------


def _download_name(rel: str) -> str:
    """Where an archive member goes in the download: dumps mysql/<db>.sql[.gz] go under databases/."""
    rest = rel.removeprefix("mysql/")
    if rest != rel and "/" not in rest and rest.endswith(DUMP_SUFFIXES):
        return f"databases/{rest}"
    return rel


def _cpanel(download: _Download, everything: bool) -> None:
    snapshot, account, plan, tar, progress, outcome = (
        download.snapshot,
        download.account,
        download.plan,
        download.tar,
        download.progress,
        download.outcome,
    )
    top = str(snapshot.meta.get("top", ""))
    config = {kind for kind, _ in plan.config}
    select = member_selector(plan, everything=everything, for_download=True)
    written: dict[str, str] = {}  # archive name of a file -> its name in the download
    problems: list[cpanel.Problem] = []
    seen_databases: set[str] = set()
    ids = account_ids(account)
    owners, check = home_owners(account, ids), client_check(account, plan, ids)
    try:
        with archive_stream(download.session, snapshot, progress) as stream:
            for member, data in cpanel.iter_members(stream, select, top=top, problems=problems):
                progress.reporter.check_abort()
                rel = member.name
                if rel.startswith("cp/"):
                    check_account(member, account)
                    if not everything and "account_settings" not in config:
                        continue
                if rel.startswith("mysql-timestamps/") and not everything:
                    continue  # a database part is its dump: databases/<db>.sql
                dump = dump_db(rel)
                db = dump[0] if dump else None
                if rel.startswith("mysql/") and not everything and db not in plan.databases:
                    continue
                named = dump_db(rel, (*DUMP_SUFFIXES, ".create"))
                if everything and named is not None and named[0] not in plan.databases:
                    continue  # a database another account owns (the plan says which, and why)
                if db is not None:
                    seen_databases.add(db)
                home = rel[len("homedir/") :] if rel.startswith("homedir/") else None
                above = home is not None and not plan.covers_home_path(home) and above_chosen(home, plan)
                if home is not None and check is not None:
                    owned = owners.of(member.uname, member.gname)
                    reason = check.refused(home, member.type, member.mode, owned, owner_label(member, owned))
                    if reason is not None:
                        if reason and not above:
                            outcome.skip(home, reason)
                        continue
                if above:
                    continue  # a folder above a chosen path, read for the check only
                if home is not None and not everything and not plan.covers_home_path(home):
                    domain = mail_file_domain(home, plan)
                    if domain is not None:
                        if member.type == "file":
                            content = read_capped(data, member.size, MAX_MAIL_FILE)
                            lines = box_lines(content or b"", plan.mail_domains()[domain])
                            if lines:
                                tar.add_bytes(rel, b"".join(lines), member.mode, member.mtime)
                                outcome.restored += 1
                        continue
                _add_member(tar, member, data, _download_name(rel), written, outcome)
    except ArchiveError as exc:
        raise ArchiveError(f"the archive is damaged: {exc.message}", exc.flag) from exc
    finally:
        for problem in problems[:200]:
            outcome.skip(problem.member, f"refused: {problem.reason}", failure=True)
    for db in plan.databases:
        if db not in seen_databases:
            outcome.skip(f"databases: {db}", "its dump is not in the archive", failure=True)


def _add_member(
    tar: TarGzWriter,
    member: cpanel.Member,
    data: cpanel.MemberData,
    name: str,
    written: dict[str, str],
    outcome: Outcome,
) -> None:
    if member.type == "dir":
        tar.add_dir(name, member.mode, member.mtime)
    elif member.type == "symlink":
        tar.add_symlink(name, member.target, member.mtime)
    elif member.type == "hardlink":
        target = written.get(member.target)
        if target is None:
            outcome.skip(name, f"hard link to {printable(member.target)}, which is not part of this download")
            return
        tar.add_hardlink(name, target, member.mode, member.mtime)
    else:
        with tar.file(name, member.size, member.mode, member.mtime) as out:
            copy_exact(data, member.size, out)
        written[member.name] = name
    outcome.restored += 1
