"""Restoring cPanel account archives: one streaming pass over the archive, whatever is chosen.

The archive (or its split pieces, chained) is downloaded once and read with
``cpanel.iter_members``, which refuses unsafe members (absolute names, '..', NUL, links out of
the archive, writes through symlinks, devices, ...). What is chosen is written as it streams
past: home files through SafeTree into the target folder, database dumps straight into
``dbrestore`` (no local copy), ``mysql.sql`` and the mail account files kept in memory (capped)
and applied after the pass.

Hard links: a hard link whose target was restored earlier in this pass becomes a copy of that
file (read back from the target through O_NOFOLLOW descriptors); any other hard link is
skipped with a reason. Shared mail files (``etc/<domain>/passwd``, ``shadow``, ``quota``) are
merged line by line when only some mailboxes are restored. A ``cp/<user>`` member naming another
account stops the restore (the index already refuses such archives; this is the second check).

Owners: the archive's tar headers carry the cPanel server's uids and gids (meaningless here)
and its user and group names. Home members get the account's current ids, except root's
(kept root's) and groups that exist here and are not another account's (``nobody`` on
public_html, ``mail`` on etc/); see ``ownership.ArchiveOwners``. A client's restore and
download leave out what the account's uid could not read with those owners
(``ownership.StreamCheck``), reported as skipped; an admin's hold everything.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any, Protocol

from destinations.engines.localfs import SafeTree, UnsafePath
from destinations.formats import cpanel, ownership
from destinations.formats.cpanel.tarsafe import ArchiveError, Member, MemberData, printable
from destinations.formats.native.common import Session
from destinations.models import Snapshot
from destinations.streams import prefetch

from . import dbrestore
from .models import Account
from .queue import EngineProgress
from .restore import (
    MAIL_FILES,
    MAX_MAIL_FILE,
    HomeTarget,
    Outcome,
    Plan,
    RestoreRefused,
    merge_mail_file,
    part_label,
    restore_database_part,
    write_error,
)

BLOCK = 1024 * 1024
MAX_GRANTS_FILE = 16 * 1024 * 1024
DUMP_SUFFIXES = (".sql", ".sql.gz")
_NS = 1_000_000_000


# --- shared with downloads ------------------------------------------------------------------


class _Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


def copy_exact(
    data: MemberData, size: int, out: _Sink, message: str = "the archive ends inside this member's data"
) -> None:
    """Copy exactly `size` bytes of a member into `out`; ArchiveError(`message`) when it ends early."""
    left = size
    while left > 0:
        block = data.read(min(BLOCK, left))
        if not block:
            raise ArchiveError(message)
        out.write(block)
        left -= len(block)


def dump_db(rel: str, suffixes: tuple[str, ...] = DUMP_SUFFIXES) -> tuple[str, str] | None:
    """(database, suffix) when member `rel` is mysql/<database><suffix>; None otherwise."""
    if not rel.startswith("mysql/"):
        return None
    rest = rel[len("mysql/") :]
    for suffix in suffixes:
        if rest.endswith(suffix) and len(rest) > len(suffix):
            return rest[: -len(suffix)], suffix
    return None


def member_selector(
    plan: Plan, *, everything: bool = False, for_download: bool = False
) -> Callable[[str], bool]:
    """Which archive members (names relative to the top folder) the plan needs."""
    if everything:
        return lambda _rel: True
    parts: list[tuple[Any, str]] = [("email_accounts", box) for box in plan.mailboxes]
    parts += [("databases", db) for db in plan.databases]
    if plan.db_users is None or plan.db_users:
        parts.append(("db_users", "*"))
    if for_download:
        parts += plan.config
    by_parts = cpanel.part_selector(parts)

    def select(rel: str) -> bool:
        if rel.startswith("cp/"):
            return True  # the account check reads it; writing it is decided later
        if rel.startswith("homedir/"):
            home = rel[len("homedir/") :]
            # The folders above a chosen path too: whether the account may open them counts.
            if plan.covers_home_path(home) or above_chosen(home, plan):
                return True
        return by_parts(rel)

    return select


def above_chosen(home_rel: str, plan: Plan) -> bool:
    """Whether home path `home_rel` is a folder above one of the chosen paths."""
    return any(p.startswith(home_rel + "/") for p in plan.paths)


def home_owners(account: Account, ids: ownership.Ids) -> ownership.ArchiveOwners:
    tenants = Account.objects.exclude(pk=account.pk).values_list("username", flat=True)
    return ownership.ArchiveOwners(account.username, ids, tenants)


def client_check(account: Account, plan: Plan, ids: ownership.Ids) -> ownership.StreamCheck | None:
    """What a client may have of the home (None for an admin: everything)."""
    return None if plan.admin else ownership.StreamCheck(account.username, ids)


def owner_label(member: Member, ids: ownership.Ids) -> str:
    """user:group of a member as its archive names them (the ids here where it names none)."""
    return f"{printable(member.uname) or ids[0]}:{printable(member.gname) or ids[1]}"


def check_account(member: Member, account: Account) -> None:
    user = member.name[len("cp/") :]
    if member.type == "file" and "/" not in user and user != account.username:
        raise RestoreRefused(f"The archive holds account {printable(user)}, not {account.username}; refused.")


def mail_file_domain(home_rel: str, plan: Plan) -> str | None:
    """The domain when `home_rel` is etc/<domain>/passwd|shadow|quota of a chosen mailbox."""
    parts = home_rel.split("/")
    if len(parts) == 3 and parts[0] == "etc" and parts[2] in MAIL_FILES and parts[1] in plan.mail_domains():
        return parts[1]
    return None


def read_capped(data: MemberData, size: int, limit: int) -> bytes | None:
    """The member's bytes when it holds at most `limit`; None (data left unread) otherwise."""
    if size > limit:
        return None
    return data.read(size)


@contextlib.contextmanager
def archive_stream(
    session: Session, snapshot: Snapshot, progress: EngineProgress | None
) -> Iterator[cpanel.IterStream]:
    """The archive's bytes (split pieces chained), downloaded once, ahead of the reader."""
    pieces = [str(p) for p in snapshot.meta.get("pieces") or [snapshot.path]]
    with session.connection() as conn:
        if snapshot.remote_size is not None:
            # The account was checked when the archive was indexed: read that archive, not one
            # put in its place since.
            sizes = [conn.size(piece) for piece in pieces]
            if any(size is None for size in sizes) or sum(s or 0 for s in sizes) != snapshot.remote_size:
                raise RestoreRefused(
                    "The archive on the destination changed since it was indexed; reindex the destination first."
                )
        chunks = prefetch(chain.from_iterable(conn.download(piece) for piece in pieces))
        try:
            yield cpanel.IterStream(_counted(chunks, progress, snapshot.size))
        finally:
            close = getattr(chunks, "close", None)
            if callable(close):
                close()  # stops the download thread


def _counted(chunks: Iterator[bytes], progress: EngineProgress | None, total: int) -> Iterator[bytes]:
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if progress is not None:
            progress.reporter.update(
                bytes_done=progress.base_bytes + seen, bytes_total=progress.base_bytes + total
            )
        yield chunk


def gunzip(data: MemberData) -> Iterator[bytes]:
    inflate = zlib.decompressobj(wbits=31)
    while block := data.read(BLOCK):
        out = inflate.decompress(block, BLOCK * 16)
        yield out
        while inflate.unconsumed_tail:
            yield inflate.decompress(inflate.unconsumed_tail, BLOCK * 16)
    tail = inflate.flush()
    if tail:
        yield tail
    if not inflate.eof:
        raise ArchiveError("a compressed dump ends early")


# --- restore --------------------------------------------------------------------------------


def restore(
    snapshot: Snapshot,
    account: Account,
    plan: Plan,
    session: Session,
    progress: EngineProgress,
    outcome: Outcome,
) -> None:
    top = str(snapshot.meta.get("top", ""))
    with contextlib.ExitStack() as stack:
        target: HomeTarget | None = None
        tree: SafeTree | None = None
        if plan.wants_files:
            target = stack.enter_context(HomeTarget(account, new_folder=not plan.overwrite))
            tree = stack.enter_context(target.tree())
            outcome.folder = target.display
            progress.log(f"Files go to {target.display}")
        writer = _Restorer(account, plan, progress, outcome, target, tree)
        problems: list[cpanel.Problem] = []
        try:
            with archive_stream(session, snapshot, progress) as stream:
                for member, data in cpanel.iter_members(
                    stream, member_selector(plan), top=top, problems=problems
                ):
                    progress.reporter.check_abort()
                    writer.member(member, data)
        except ArchiveError as exc:
            outcome.skip("(archive)", f"the archive is damaged: {exc.message}", failure=True)
        except RestoreRefused:
            if target is not None:
                target.discard_new_folder()  # nothing of another account's archive stays behind
            raise
        finally:
            for problem in problems[:200]:
                outcome.skip(problem.member, f"refused: {problem.reason}", failure=True)
        writer.finish()


class _Restorer:
    def __init__(
        self,
        account: Account,
        plan: Plan,
        progress: EngineProgress,
        outcome: Outcome,
        target: HomeTarget | None,
        tree: SafeTree | None,
    ) -> None:
        self.account = account
        self.plan = plan
        self.progress = progress
        self.outcome = outcome
        self.target = target
        self.tree = tree
        ids = target.ids if target is not None else (0, 0)
        self.owners = home_owners(account, ids)
        self.check = client_check(account, plan, ids)
        self.written: set[str] = set()  # home-relative files restored in this pass
        self.dirs: list[tuple[str, int, int, ownership.Ids]] = []
        self.mail_files: dict[str, tuple[bytes, int]] = {}
        self.charsets: dict[str, tuple[str, str]] = {}
        self.databases_seen: set[str] = set()
        self.grants = ""
        self.auth = ""
        self.files = 0

    # -- one member --

    def member(self, member: Member, data: MemberData) -> None:
        name = member.name
        if name.startswith("cp/"):
            check_account(member, self.account)
            return
        if name.startswith("homedir/"):
            self._home(name[len("homedir/") :], member, data)
            return
        if name.startswith("mysql/") and member.type == "file":
            self._database(name, member, data)
            return
        if name in ("mysql.sql", "mysql.sql-auth.json") and member.type == "file":
            text = read_capped(data, member.size, MAX_GRANTS_FILE)
            if text is None:
                self.outcome.skip(name, "too large to restore grants from", failure=True)
            elif name == "mysql.sql":
                self.grants = text.decode("utf-8", "replace")
            else:
                self.auth = text.decode("utf-8", "replace")

    def _home(self, rel: str, member: Member, data: MemberData) -> None:
        if self.target is None or self.tree is None:
            return
        covered = self.plan.covers_home_path(rel)
        above = not covered and above_chosen(rel, self.plan)
        ids = self.owners.of(member.uname, member.gname)
        if self.check is not None:
            reason = self.check.refused(rel, member.type, member.mode, ids, owner_label(member, ids))
            if reason is not None:
                if reason and not above:
                    self.outcome.skip(rel, reason)
                return
        if above:
            return  # a folder above a chosen path, read for the check only
        if not covered:
            domain = mail_file_domain(rel, self.plan)
            if domain is not None:
                if member.type == "file":
                    content = read_capped(data, member.size, MAX_MAIL_FILE)
                    if content is None:
                        self.outcome.skip(rel, "too large for a mail account file", failure=True)
                    else:
                        self.mail_files[rel] = (content, member.mode)
                return
        try:
            self._write(rel, member, data, ids)
        except ArchiveError:
            raise
        except (UnsafePath, OSError) as exc:
            self.outcome.skip(rel, write_error(rel, exc), failure=not isinstance(exc, FileExistsError))

    def _write(self, rel: str, member: Member, data: MemberData, ids: ownership.Ids) -> None:
        assert self.tree is not None
        tree = self.tree
        overwrite = self.plan.overwrite
        mtime_ns = member.mtime * _NS
        if member.type == "dir":
            tree.mkdir(rel, 0o700, replace=overwrite, owner=ids)
            self.dirs.append((rel, member.mode, mtime_ns, ids))
            return
        if member.type == "symlink":
            tree.symlink(rel, member.target, mtime_ns=mtime_ns, overwrite=overwrite, owner=ids)
            self._restored()
            return
        if member.type == "hardlink":
            self._hardlink(rel, member, ids)
            return
        handle = tree.open_file(rel, overwrite=overwrite)
        try:
            copy_exact(data, member.size, handle)
            tree.finish_file(handle, mode=member.mode, mtime_ns=mtime_ns, overwrite=overwrite, owner=ids)
        except BaseException:
            tree.discard(handle)
            raise
        self.written.add(rel)
        self._restored()

    def _hardlink(self, rel: str, member: Member, ids: ownership.Ids) -> None:
        assert self.tree is not None
        assert self.target is not None
        source = member.target[len("homedir/") :] if member.target.startswith("homedir/") else None
        if source is None or source not in self.written:
            self.outcome.skip(
                rel, f"hard link to {printable(member.target)}, which is not part of this restore"
            )
            return
        fd = self.target.open_file(source)
        if fd is None:
            self.outcome.skip(rel, f"hard link: {printable(source)} cannot be read back", failure=True)
            return
        try:
            handle = self.tree.open_file(rel, overwrite=self.plan.overwrite)
            try:
                while block := os.read(fd, BLOCK):
                    handle.write(block)
                self.tree.finish_file(
                    handle,
                    mode=member.mode,
                    mtime_ns=member.mtime * _NS,
                    overwrite=self.plan.overwrite,
                    owner=ids,
                )
            except BaseException:
                self.tree.discard(handle)
                raise
        finally:
            os.close(fd)
        self.written.add(rel)
        self._restored()

    def _restored(self) -> None:
        self.outcome.restored += 1
        self.files += 1
        self.progress.reporter.update(files_done=self.progress.base_files + self.files)

    def _database(self, name: str, member: Member, data: MemberData) -> None:
        dump = dump_db(name, (*DUMP_SUFFIXES, ".create"))
        if dump is None or dump[0] not in self.plan.databases:
            return
        db, suffix = dump
        if suffix == ".create":
            text = read_capped(data, member.size, 64 * 1024)
            if text is not None:
                self.charsets[db] = dbrestore.charset_of(text.decode("utf-8", "replace"))
            return
        if db in self.databases_seen:
            self.outcome.skip(name, "a second dump of this database is not loaded", failure=True)
            return
        self.databases_seen.add(db)

        def write_dump(out: Any) -> None:
            if suffix == ".sql.gz":
                for block in gunzip(data):
                    out.write(block)
                return
            copy_exact(data, member.size, out, "the archive ends inside a database dump")

        charset, collation = self.charsets.get(db, ("", ""))
        restore_database_part(
            self.account, self.plan, self.progress, self.outcome, db, write_dump, charset, collation
        )

    # -- after the pass --

    def finish(self) -> None:
        for db in self.plan.databases:
            if db not in self.databases_seen:
                self.outcome.skip(part_label("databases", db), "its dump is not in the archive", failure=True)
        if self.mail_files and self.target is not None and self.tree is not None:
            domains = self.plan.mail_domains()
            for rel, (content, mode) in sorted(self.mail_files.items()):
                boxes = domains.get(rel.split("/")[1], set())
                try:
                    if merge_mail_file(self.target, self.tree, rel, content, boxes, mode):
                        self.outcome.restored += 1
                except (UnsafePath, OSError) as exc:
                    self.outcome.skip(rel, write_error(rel, exc), failure=True)
        if self.plan.db_users is None or self.plan.db_users:
            self._grants()
        if self.tree is not None:
            for rel, mode, mtime_ns, ids in sorted(self.dirs, key=lambda d: d[0].count("/"), reverse=True):
                try:
                    self.tree.finish_dir(rel, mode, mtime_ns, owner=ids)
                    self.outcome.restored += 1
                except (UnsafePath, OSError) as exc:
                    self.outcome.skip(rel, f"cannot set folder mode/time: {exc}", failure=True)

    def _grants(self) -> None:
        from . import mysql

        if not self.grants:
            self.outcome.skip("db_users", "mysql.sql is not in the archive", failure=True)
            return
        users = None if self.plan.db_users is None else set(self.plan.db_users)
        try:
            done = dbrestore.restore_grants(
                mysql.server(),
                account_name=self.account.username,
                mysql_sql=self.grants,
                auth_json=self.auth,
                users=users,
                owners=Account.owners(),
            )
        except mysql.MysqlError as exc:
            self.outcome.skip("db_users", f"failed: {exc}", failure=True)
            return
        self.outcome.db_users.extend(done.applied)
        self.outcome.restored += len(done.applied)
        for what, reason in done.skipped:
            self.outcome.skip(part_label("db_users", what), reason, failure=reason.startswith("failed"))
        for user in sorted((users or set()) - {a.split("@", 1)[0] for a in done.applied}):
            if not any(s["path"].startswith(part_label("db_users", user)) for s in self.outcome.skipped):
                self.outcome.skip(part_label("db_users", user), "not in mysql.sql", failure=True)
