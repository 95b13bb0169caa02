"""Writing into the account's home folder: over the current files (``overwrite``) or into a new
folder ``restore-YYYY-MM-DD-HHMMSS/`` inside it (``new_folder``, the default; it never replaces
anything).

Every write goes through ``SafeTree`` (``localfs``: directory file descriptors, O_NOFOLLOW, no
'..', setuid/setgid dropped). As root, native backups get back the owners they recorded
(``destinations.formats.ownership``: the account's entries go to the current owner of the home
folder, root's and other users' by name, else by number); everything else written (cPanel
archives, the new folder itself, folders a restore has to create) belongs to the owner of the
home folder. The new folder is opened with O_NOFOLLOW from the home folder's descriptor and
written through that descriptor, so a user who swaps it for a symlink while the restore runs
cannot redirect it.

`write_native` writes a native backup's chosen files (``native.materialise``: only the chunks
of the chosen files are read, with ranged downloads coalesced per pack); `ArchiveHome` writes
the home members of a cPanel archive as they stream past. Hard links of an archive: one whose
target was restored earlier in this pass becomes a copy of that file (read back from the target
through O_NOFOLLOW descriptors); any other hard link is skipped with a reason. Shared mail files
(``etc/<domain>/passwd``, ``shadow``, ``quota``) are merged line by line when only some
mailboxes are restored.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path
from typing import Any

from django.utils import timezone

from destinations import names
from destinations.formats import native, ownership
from destinations.formats.cpanel.tarsafe.common import ArchiveError, Member, printable
from destinations.formats.cpanel.tarsafe.reader import MemberData
from destinations.formats.native.common import Session
from destinations.localfs import SafeTree, UnsafePath
from jobs.models import Snapshot

from ... import hostroot
from ...models import Account
from ...queue import EngineProgress
from ..outcome import Outcome, RestoreRefused, write_error
from ..plan import MAX_MAIL_FILE, Plan
from ..sources import cpanel as cpanel_source
from ..sources import native as native_source

_NS = 1_000_000_000

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class HomeTarget:
    """Where file parts are written: the home folder itself, or a new folder inside it.

    `root` is a /proc/self/fd path of a descriptor opened without following symlinks: what
    SafeTree opens through it is that very folder, whatever is renamed meanwhile.
    """

    def __init__(self, account: Account, *, new_folder: bool, now: Any = None) -> None:
        home = account.home
        if not home or not os.path.isabs(home):
            raise RestoreRefused(f"Account {account.username} has no home folder on this server.")
        real_home = hostroot.host_path(home)  # the server's /home/bob, under BACKUPSITE_HOST_ROOT
        try:
            st = os.lstat(real_home)
        except FileNotFoundError:
            raise RestoreRefused(f"The home folder {home} of {account.username} does not exist.") from None
        if not stat.S_ISDIR(st.st_mode):
            raise RestoreRefused(
                f"The home folder {home} of {account.username} is not a folder (a symlink?)."
            )
        self.home_fd = os.open(real_home, _DIR_FLAGS)
        self.fd = self.home_fd
        self.new_folder = ""
        try:
            home_st = os.fstat(self.home_fd)
            self.ids = (home_st.st_uid, home_st.st_gid)  # the account's uid and gid, now
            self.owner = self.ids if os.geteuid() == 0 else None
            self.display = home
            if new_folder:
                self.new_folder = self._make_folder(now)
                self.display = os.path.join(home, self.new_folder)
        except BaseException:
            self.close()
            raise

    def _make_folder(self, now: Any) -> str:
        moment = timezone.localtime(now or timezone.now())
        base = f"restore-{moment:%Y-%m-%d-%H%M%S}"
        for attempt in range(1, 100):
            name = base if attempt == 1 else f"{base}-{attempt}"
            try:
                os.mkdir(name, 0o700, dir_fd=self.home_fd)
            except FileExistsError:
                continue
            fd = os.open(name, _DIR_FLAGS, dir_fd=self.home_fd)
            if self.owner is not None:
                os.fchown(fd, *self.owner)
            self.fd = fd
            return name
        raise RestoreRefused("Could not create a new restore folder in the home folder.")

    @property
    def root(self) -> Path:
        return Path(f"/proc/self/fd/{self.fd}")

    def tree(self) -> SafeTree:
        return SafeTree(self.root, owner=self.owner)

    def read_file(self, rel: str, limit: int = MAX_MAIL_FILE) -> tuple[bytes, int] | None:
        """(content, mode) of regular file `rel` under the root, never through a symlink."""
        fd = self.open_file(rel)
        if fd is None:
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
                return None
            chunks = []
            while block := os.read(fd, 1024 * 1024):
                chunks.append(block)
            return b"".join(chunks), stat.S_IMODE(st.st_mode)
        finally:
            os.close(fd)

    def open_file(self, rel: str) -> int | None:
        """A read descriptor of `rel` under the root (no symlink followed), or None."""
        try:
            parts = rel.split("/")
            if any(p in ("", ".", "..") for p in parts):
                return None
            current = os.dup(self.fd)
            try:
                for part in parts[:-1]:
                    following = os.open(part, _DIR_FLAGS, dir_fd=current)
                    os.close(current)
                    current = following
                return os.open(
                    parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=current
                )
            finally:
                os.close(current)
        except OSError:
            return None

    def discard_new_folder(self) -> None:
        """Remove the new folder with what was written into it (never the home itself)."""
        if self.new_folder and self.home_fd >= 0:
            if self.fd != self.home_fd:
                os.close(self.fd)
                self.fd = self.home_fd
            shutil.rmtree(self.new_folder, dir_fd=self.home_fd, ignore_errors=True)
            self.new_folder = ""

    def close(self) -> None:
        if self.fd != self.home_fd and self.fd >= 0:
            os.close(self.fd)
        if self.home_fd >= 0:
            os.close(self.home_fd)
        self.fd = self.home_fd = -1

    def __enter__(self) -> HomeTarget:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_exc: object) -> None:
        if exc_type is not None and self.new_folder:
            # A restore that failed before writing anything leaves no empty folder behind.
            with contextlib.suppress(OSError):
                os.rmdir(self.new_folder, dir_fd=self.home_fd)
        self.close()


def box_lines(data: bytes, boxes: set[str]) -> list[bytes]:
    """Lines of a `etc/<domain>/passwd|shadow|quota` file that belong to `boxes`."""
    wanted = {os.fsencode(box) for box in boxes}
    return [line for line in data.splitlines(keepends=True) if line.split(b":", 1)[0] in wanted]


def merge_mail_file(
    target: HomeTarget, tree: SafeTree, rel: str, backup: bytes, boxes: set[str], mode: int
) -> int:
    """Write the backup's lines of `boxes` into `rel`, keeping every other box's current line.

    A box's current line is replaced where it stands; boxes the file does not list yet are
    appended. Returns how many lines came from the backup.
    """
    restored: dict[bytes, bytes] = {}
    for line in box_lines(backup, boxes):
        restored.setdefault(line.split(b":", 1)[0], line if line.endswith(b"\n") else line + b"\n")
    if not restored:
        return 0
    current = target.read_file(rel)
    lines: list[bytes] = []
    placed: set[bytes] = set()
    if current is not None:
        mode = current[1]
        for line in current[0].splitlines(keepends=True):
            box = line.split(b":", 1)[0]
            if box in restored:
                if box not in placed:  # a box listed twice keeps one line, the backup's
                    lines.append(restored[box])
                    placed.add(box)
                continue
            lines.append(line if line.endswith(b"\n") else line + b"\n")
    lines += [line for box, line in restored.items() if box not in placed]
    handle = tree.open_file(rel, overwrite=True)
    try:
        handle.write(b"".join(lines))
        tree.finish_file(handle, mode=mode, overwrite=True)
    except BaseException:
        tree.discard(handle)
        raise
    return len(box_lines(backup, boxes))


# --- a native backup ----------------------------------------------------------------------------


def write_native(
    snapshot: Snapshot,
    account: Account,
    manifest: native.Manifest,
    plan: Plan,
    session: Session,
    progress: EngineProgress,
    outcome: Outcome,
) -> None:
    """Write the plan's home files and mailboxes of a native backup into the home folder."""
    with HomeTarget(account, new_folder=not plan.overwrite) as target:
        outcome.folder = target.display
        progress.log(f"Files go to {target.display}")
        paths: list[str] | None = None
        if not plan.whole_home:
            folders = (native_source.mailbox_folder(box) for box in plan.mailboxes)
            paths = [*plan.paths, *(f for f in folders if not plan.covers_home_path(f))]
        wanted = None if paths is None else [names.to_bytes(p) for p in paths]
        full = manifest
        manifest = native_source.readable_files(
            full,
            account,
            target.ids,
            plan,
            lambda rel: wanted is None or any(rel == w or rel.startswith(w + b"/") for w in wanted),
            outcome,
        )
        if paths is not None and manifest is not full:
            # A chosen path left out above was reported; materialise must not call it missing.
            kept, known = manifest.entry_map(), full.entry_map()
            paths = [p for p in paths if names.to_bytes(p) in kept or names.to_bytes(p) not in known]
        if paths is None or paths:
            owners = ownership.Owners(manifest, target.ids)
            result = native.materialise(
                session,
                snapshot.path,
                manifest,
                target.root,
                paths=paths,
                progress=progress,
                owner=target.owner,
                owner_of=owners.of,
                overwrite=plan.overwrite,
            )
            outcome.restored += result.restored
            for path, reason in result.skipped:
                outcome.skip(path, reason, failure=not reason.startswith("exists"))
            progress.stage_done()
        if plan.mailboxes:
            _native_mail_lines(snapshot, manifest, plan, session, target, outcome)


def _native_mail_lines(
    snapshot: Snapshot,
    manifest: native.Manifest,
    plan: Plan,
    session: Session,
    target: HomeTarget,
    outcome: Outcome,
) -> None:
    """Each restored box's lines of etc/<domain>/passwd, shadow and quota (others' lines kept)."""
    with session.connection() as conn, target.tree() as tree:
        reader = native_source.PackReader(conn, snapshot.path)
        try:
            for rel, entry, boxes in native_source.mail_file_entries(manifest, plan):
                if entry.size > MAX_MAIL_FILE:
                    outcome.skip(rel, "too large for a mail account file", failure=True)
                    continue
                try:
                    data = b"".join(native_source.read_entry(reader, entry))
                    if merge_mail_file(target, tree, rel, data, boxes, entry.mode):
                        outcome.restored += 1
                except (native.ObjectCorrupt, OSError, ValueError) as exc:
                    outcome.skip(rel, write_error(rel, exc), failure=True)
        finally:
            reader.close()


# --- a cPanel archive ---------------------------------------------------------------------------


class ArchiveHome:
    """The home members of a cPanel archive, written as they stream past (``homedir/`` taken
    off their names); `finish_mail_files` and `finish_dirs` after the pass."""

    def __init__(
        self,
        account: Account,
        plan: Plan,
        progress: EngineProgress,
        outcome: Outcome,
        target: HomeTarget | None,
        tree: SafeTree | None,
    ) -> None:
        self.plan = plan
        self.progress = progress
        self.outcome = outcome
        self.target = target
        self.tree = tree
        ids = target.ids if target is not None else (0, 0)
        self.owners = cpanel_source.home_owners(account, ids)
        self.check = cpanel_source.client_check(account, plan, ids)
        self.written: set[str] = set()  # home-relative files restored in this pass
        self.dirs: list[tuple[str, int, int, ownership.Ids]] = []
        self.mail_files: dict[str, tuple[bytes, int]] = {}
        self.files = 0

    def member(self, rel: str, member: Member, data: MemberData) -> None:
        if self.target is None or self.tree is None:
            return
        covered = self.plan.covers_home_path(rel)
        above = not covered and cpanel_source.above_chosen(rel, self.plan)
        ids = self.owners.of(member.uname, member.gname)
        if self.check is not None:
            reason = self.check.refused(
                rel, member.type, member.mode, ids, cpanel_source.owner_label(member, ids)
            )
            if reason is not None:
                if reason and not above:
                    self.outcome.skip(rel, reason)
                return
        if above:
            return  # a folder above a chosen path, read for the check only
        if not covered:
            domain = cpanel_source.mail_file_domain(rel, self.plan)
            if domain is not None:
                if member.type == "file":
                    content = cpanel_source.read_capped(data, member.size, MAX_MAIL_FILE)
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
            cpanel_source.copy_exact(data, member.size, handle)
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
                while block := os.read(fd, cpanel_source.BLOCK):
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
        self.progress.reporter.update(files_done=self.progress.base.files_done + self.files)

    def finish_mail_files(self) -> None:
        """Merge the chosen boxes' lines into the shared mail files kept during the pass."""
        if self.mail_files and self.target is not None and self.tree is not None:
            domains = self.plan.mail_domains()
            for rel, (content, mode) in sorted(self.mail_files.items()):
                boxes = domains.get(rel.split("/")[1], set())
                try:
                    if merge_mail_file(self.target, self.tree, rel, content, boxes, mode):
                        self.outcome.restored += 1
                except (UnsafePath, OSError) as exc:
                    self.outcome.skip(rel, write_error(rel, exc), failure=True)

    def finish_dirs(self) -> None:
        """The folders' modes and times, deepest first (writing into them changed their times)."""
        if self.tree is not None:
            for rel, mode, mtime_ns, ids in sorted(self.dirs, key=lambda d: d[0].count("/"), reverse=True):
                try:
                    self.tree.finish_dir(rel, mode, mtime_ns, owner=ids)
                    self.outcome.restored += 1
                except (UnsafePath, OSError) as exc:
                    self.outcome.skip(rel, f"cannot set folder mode/time: {exc}", failure=True)
