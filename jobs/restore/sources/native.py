"""Reading Backupsite's own (native) backups, for restores and downloads alike.

The manifest comes from the local copy the catalog keeps (read from the destination only when it
is missing), and must name the account restored into. A client has only what the account's uid
could read on the live system (``readable_files``; the rest is reported as skipped); an admin
has everything. ``PackReader`` serves downloads and the mailbox files: sequential ranged reads
of packs over one connection, checked against each file's sha256 (``read_entry``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator

from destinations.formats import native, ownership
from destinations.formats.native.common import PACKS_DIR, Session
from destinations.formats.native.restore import GAP_BRIDGE, decode_chunk
from destinations.ftp import RemoteStore
from jobs import catalog
from jobs.models import Snapshot

from ...models import Account
from ..outcome import Outcome, RestoreRefused
from ..plan import MAIL_FILES, Plan

NOBODY = 65534

# --- the manifest and what the requester may have of it ---------------------------------------


def manifest_of(snapshot: Snapshot, account: Account, session: Session) -> native.Manifest:
    """The backup's manifest; RestoreRefused when it holds another account."""
    manifest = catalog.cached_manifest(snapshot)
    if manifest is None:
        with session.connection() as conn:
            manifest = native.read_manifest(conn, snapshot.path)
    if manifest.account != account.username:
        raise RestoreRefused(f"The backup holds account {manifest.account}, not {account.username}; refused.")
    return manifest


def account_ids(account: Account, recorded: ownership.Ids | None = None) -> ownership.Ids:
    """The account's (uid, gid) now: its home folder's owner and group; without a home folder
    here, what the backup `recorded` (a backup that recorded nothing has only the account's
    entries, so any ids do)."""
    with contextlib.suppress(OSError):
        st = os.lstat(account.home) if account.home else None
        if st is not None and stat.S_ISDIR(st.st_mode):
            return st.st_uid, st.st_gid
    return recorded or (NOBODY, NOBODY)


def readable_files(
    manifest: native.Manifest,
    account: Account,
    ids: ownership.Ids,
    plan: Plan,
    chosen: Callable[[bytes], bool],
    outcome: Outcome,
) -> native.Manifest:
    """The manifest as the requester may have it: whole for an admin; for a client, without
    the entries the account's uid could not read (those among the `chosen` paths are
    reported as skipped, with the reason)."""
    if plan.admin or all(e.uid is None for e in manifest.entries):
        return manifest  # the account may read all of its own entries
    check = ownership.ReadCheck(manifest, ownership.Owners(manifest, ids), account.username)
    for hidden in check.hidden(e for e in manifest.entries if chosen(e.path)):
        outcome.skip(hidden.entry.display, hidden.reason)
    entries = [e for e in manifest.entries if check.allowed(e)]
    if len(entries) == len(manifest.entries):
        return manifest
    return dataclasses.replace(manifest, entries=entries)


def mailbox_folder(box: str) -> str:
    """The home folder of mailbox `box@domain`: mail/<domain>/<box>."""
    name, _, domain = box.rpartition("@")
    return f"mail/{domain}/{name}"


def mail_file_entries(manifest: native.Manifest, plan: Plan) -> Iterator[tuple[str, native.Entry, set[str]]]:
    """(home path, entry, boxes) of each chosen mailbox domain's etc/<domain>/passwd, shadow and
    quota that the backup holds as a file and the plan does not restore whole (any size)."""
    entries = manifest.entry_map()
    for domain, boxes in plan.mail_domains().items():
        for name in MAIL_FILES:
            rel = f"etc/{domain}/{name}"
            entry = entries.get(rel.encode("utf-8", "surrogateescape"))
            if entry is not None and entry.type == "f" and not plan.covers_home_path(rel):
                yield rel, entry, boxes


# --- reading packs sequentially ---------------------------------------------------------------


class PackReader:
    """Chunks of packs, read with as few ranged downloads as possible.

    With a plan, chunks of one pack that follow each other (gaps up to GAP_BRIDGE are read
    through) are fetched by one ranged download of exactly that run; a chunk outside the open
    download opens another. Callers that ask for chunks in pack order get one transfer per run.
    """

    def __init__(self, store: RemoteStore, backup_path: str, plan: Iterable[native.ChunkRef] = ()) -> None:
        """`plan`: the chunks in the order they will be asked for, so that each download asks
        for exactly the run of chunks it serves (nothing past it is sent)."""
        self.store = store
        self.backup_path = backup_path
        self.transfers = 0
        self._blocks: Iterator[bytes] | None = None
        self._pack = ""
        self._position = 0  # offset in the pack of _buffer[0]
        self._end = 0  # where the open download stops
        self._buffer = bytearray()
        self._run_end: dict[tuple[str, int], int] = {}
        run: list[tuple[str, int]] = []
        pack, end = "", -1
        for chunk in plan:
            if run and (chunk.pack != pack or not end <= chunk.offset <= end + GAP_BRIDGE):
                self._close_run(run, end)
                run = []
            pack = chunk.pack
            end = max(end, chunk.offset + chunk.stored) if run else chunk.offset + chunk.stored
            run.append((chunk.pack, chunk.offset))
        if run:
            self._close_run(run, end)

    def _close_run(self, run: list[tuple[str, int]], end: int) -> None:
        for key in run:
            self._run_end.setdefault(key, end)

    def read(self, chunk: native.ChunkRef) -> bytes:
        """The stored bytes of `chunk`."""
        if (
            self._blocks is None
            or chunk.pack != self._pack
            or chunk.offset < self._position
            or chunk.offset + chunk.stored > self._end
        ):
            self.close()
            path = f"{self.backup_path}/{PACKS_DIR}/{chunk.pack}"
            self._end = max(self._run_end.get((chunk.pack, chunk.offset), 0), chunk.offset + chunk.stored)
            self._blocks = iter(
                self.store.download(path, offset=chunk.offset, length=self._end - chunk.offset)
            )
            self.transfers += 1
            self._pack = chunk.pack
            self._position = chunk.offset
        end = chunk.offset + chunk.stored
        while self._position + len(self._buffer) < end:
            block = next(self._blocks, None)
            if block is None:
                raise native.ObjectCorrupt(f"{chunk.pack}: the pack is shorter than the manifest says")
            self._buffer += block
        start = chunk.offset - self._position
        data = bytes(memoryview(self._buffer)[start : start + chunk.stored])  # one copy, not two
        del self._buffer[: start + chunk.stored]
        self._position = end
        return data

    def close(self) -> None:
        blocks, self._blocks = self._blocks, None
        close = getattr(blocks, "close", None)
        if callable(close):
            close()
        self._buffer.clear()


def read_entry(reader: PackReader, entry: native.Entry) -> Iterator[bytes]:
    """The content of file `entry`, chunk by chunk; ObjectCorrupt at the end when it does not
    match its recorded sha256 (so a consumer must not treat the bytes as good before then)."""
    digest = hashlib.sha256()
    size = 0
    for chunk in entry.chunks:
        stored = reader.read(chunk)
        try:
            data = decode_chunk(chunk, stored)
        except native.ObjectCorrupt as exc:
            raise native.ObjectCorrupt(f"{entry.display}: {exc}") from exc
        digest.update(data)
        size += len(data)
        yield data
    if size != entry.size or digest.hexdigest() != entry.sha256:
        raise native.ObjectCorrupt(f"{entry.display}: the stored data is damaged (size or sha256)")
