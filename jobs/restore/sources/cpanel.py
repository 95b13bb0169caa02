"""Reading cPanel account archives, for restores and downloads alike: one streaming pass over
the archive, whatever is chosen.

The archive (or its split pieces, chained) is downloaded once (``archive_stream``) and read with
``cpanel.iter_members``, which refuses unsafe members (absolute names, '..', NUL, links out of
the archive, writes through symlinks, devices, ...); ``member_selector`` says which members a
plan needs. A ``cp/<user>`` member naming another account stops the run (``check_account``; the
index already refuses such archives; this is the second check).

Owners: the archive's tar headers carry the cPanel server's uids and gids (meaningless here)
and its user and group names. Home members get the account's current ids, except root's
(kept root's) and groups that exist here and are not another account's (``nobody`` on
public_html, ``mail`` on etc/); see ``ownership.ArchiveOwners``. A client's restore and
download leave out what the account's uid could not read with those owners
(``ownership.StreamCheck``, `client_check`), reported as skipped; an admin's hold everything.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any, Protocol

from destinations.formats import cpanel, ownership
from destinations.formats.cpanel.tarsafe.common import ArchiveError, Member, printable
from destinations.formats.cpanel.tarsafe.reader import MemberData
from destinations.formats.native.common import Session
from destinations.streams import prefetch
from jobs.models import Snapshot

from ...models import Account
from ...queue import EngineProgress
from ..outcome import RestoreRefused
from ..plan import MAIL_FILES, Plan

BLOCK = 1024 * 1024
MAX_GRANTS_FILE = 16 * 1024 * 1024
DUMP_SUFFIXES = (".sql", ".sql.gz")


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
                bytes_done=progress.base.bytes_done + seen, bytes_total=progress.base.bytes_done + total
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
