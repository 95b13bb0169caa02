"""Restores: requests, their validation, queueing, and running them (engines in restore_native
and restore_cpanel, databases in dbrestore, downloads in downloads).

Where things go:
* Home files and mailboxes go into the account's home folder: over the current files
  (``overwrite``) or into a new folder ``restore-YYYY-MM-DD-HHMMSS/`` inside it (``new_folder``,
  the default; it never replaces anything). Every write goes through ``SafeTree`` (directory
  file descriptors, O_NOFOLLOW, no '..', setuid/setgid dropped). As root, native backups get
  back the owners they recorded (``destinations.formats.ownership``: the account's entries go
  to the current owner of the home folder, root's and other users' by name, else by number);
  everything else written (cPanel archives, the new folder itself, folders a restore has to
  create) belongs to the owner of the home folder. The new folder is opened with O_NOFOLLOW
  from the home folder's descriptor and written through that descriptor, so a user who swaps
  it for a symlink while the restore runs cannot redirect it.
* Databases go into the server from settings, over the database of the same name, or into
  ``database_name`` (see ``dbrestore`` for how a live database survives a broken backup);
  database users and grants likewise. Only what the account owns by ``ownership``'s rule:
  a backup of ``alice`` may hold ``alice_x_wp`` (dumped before account ``alice_x`` existed);
  asking for it is refused, and a whole-account restore or download skips it with the reason.
* Configuration parts (cron, DNS zones, SSL, FTP accounts, domains, forwarders and filters,
  account settings) are not applied: skipped with ``CONFIG_REASON``; downloads include them.

A client restores and downloads only what the account's uid could read on the live system
(``ownership.ReadCheck``); the rest is skipped with the reason. An admin restores everything.

A backup is only ever restored into its own account (the snapshot's account; a queue item
naming another account, an archive that names another account, a backup that is not
restorable, or file parts for an account without a home folder here are refused).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from backupsite import access
from destinations import listing, names
from destinations.engines.localfs import SafeTree, UnsafePath
from destinations.formats import native
from destinations.ftp import FtpError, FtpSession
from destinations.models import Destination, Engine, Snapshot

from . import hostroot, queue
from .models import Account, QueueItem

CONFIG_KINDS = frozenset(
    {"cron", "dns_zones", "ssl", "ftp_accounts", "domains", "forwarders_filters", "account_settings"}
)
CONFIG_REASON = "apply it in the hosting control panel; download it instead"
TARGETS = ("new_folder", "overwrite")
MAX_PATHS = 10_000
MAX_SKIPPED = 1000  # kept verbatim in a result; the rest are counted
MAIL_FILES = ("passwd", "shadow", "quota")
MAX_MAIL_FILE = 16 * 1024 * 1024
_REQUEST_KEYS = frozenset(
    {"parts", "paths", "paths_b64", "target", "database_name", "whole_account", "confirm_overwrite"}
)
_DB_NAME_REST = re.compile(r"[A-Za-z0-9_]+")


class RestoreRefused(Exception):
    """The restore must not run at all (wrong account, not restorable, no home folder, ...)."""


# --- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreRequest:
    """What to restore (or download). Empty `parts` and `paths`: everything (a request says so
    with ``whole_account``; validate_request never lets an empty selection mean it by accident)."""

    parts: tuple[tuple[str, str], ...] = ()
    paths: tuple[str, ...] = ()  # names as destinations.names holds them (bytes that are not UTF-8 too)
    target: str = "new_folder"  # "" for a download
    database_name: str = ""
    # The requester's yes to replacing live data: how it was asked for, not what is restored.
    confirm_overwrite: bool = field(default=False, compare=False)

    @property
    def everything(self) -> bool:
        return not self.parts and not self.paths

    def to_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "parts": [{"kind": kind, "name": name} for kind, name in self.parts],
            "paths": [path for path in self.paths if names.is_text(path)],
        }
        raw = [names.to_b64(path) for path in self.paths if not names.is_text(path)]
        if raw:  # JSON (and the database) take text only: these travel as the request sent them
            params["paths_b64"] = raw
        if self.target:
            params["target"] = self.target
        if self.database_name:
            params["database_name"] = self.database_name
        # Kept so that the worker, which checks the request again, sees the same explicit choices.
        if self.everything:
            params["whole_account"] = True
        if self.confirm_overwrite:
            params["confirm_overwrite"] = True
        return params


def validate_request(
    snapshot: Snapshot, data: Any, *, for_download: bool = False, require_confirmation: bool = True
) -> RestoreRequest:
    """A checked RestoreRequest for `snapshot`, or ValidationError with messages per field.

    Checks the snapshot can be restored, part kinds/names exist in it, paths are plain
    relative paths that its listing holds, the target, and `database_name` (`<account>_…`,
    only with exactly one database to restore). Nothing selected is refused unless
    ``whole_account`` is true, so that a forgotten tick never means "everything"; a restore
    that replaces live data (see `replaced`) is refused without ``confirm_overwrite`` unless
    `require_confirmation` is false (a page showing what would happen before asking).
    Changes nothing.
    """
    errors: dict[str, list[str]] = {}

    def error(key: str, message: str) -> None:
        errors.setdefault(key, []).append(message)

    if not isinstance(data, dict):
        raise ValidationError({"__all__": ["The request must be an object with parts, paths and target."]})
    unknown = sorted(str(key) for key in data if key not in _REQUEST_KEYS)
    if unknown:
        error("__all__", f"Unknown fields: {', '.join(unknown)}.")
    if not snapshot.restorable:
        error("__all__", "This backup is not complete or has problems; it cannot be restored or downloaded.")
    account = snapshot.account
    if account is None:
        error("__all__", "The account of this backup is not known on this server.")

    parts = _validate_parts(snapshot, data.get("parts"), error)
    paths = _validate_paths(snapshot, data.get("paths"), data.get("paths_b64"), error)
    whole_account = _flag(data, "whole_account", error)
    confirm_overwrite = _flag(data, "confirm_overwrite", error)
    if whole_account and (parts or paths):
        error("whole_account", "whole_account means every part; leave parts and paths out, or whole_account.")
    elif (
        not whole_account and not parts and not paths and not errors.keys() & {"parts", "paths", "paths_b64"}
    ):
        error(
            "__all__",
            "Nothing is selected: choose parts or paths, or ask for the whole account (whole_account: true).",
        )
    if for_download and confirm_overwrite:
        error("confirm_overwrite", "A download replaces nothing; leave confirm_overwrite out.")

    target = data.get("target")
    if for_download:
        if target not in (None, ""):
            error("target", "A download has no target; leave it out.")
        target = ""
    elif target in (None, ""):
        target = "new_folder"
    elif target not in TARGETS:
        error("target", f"Choose one of: {', '.join(TARGETS)}.")

    database_name = data.get("database_name")
    if database_name in (None, ""):
        database_name = ""
    elif for_download:
        error("database_name", "A download keeps the database names; leave database_name out.")
        database_name = ""
    elif not isinstance(database_name, str):
        error("database_name", "Give the database name as text.")
        database_name = ""
    else:
        username = account.username if account is not None else snapshot.account_name
        prefix = f"{username}_"
        if (
            not database_name.startswith(prefix)
            or len(database_name) > 64
            or not _DB_NAME_REST.fullmatch(database_name[len(prefix) :])
        ):
            error(
                "database_name",
                f"The database name must be {prefix} followed by letters, digits or _ "
                "(at most 64 characters in all).",
            )
        chosen = (
            parts if not whole_account else [(p.get("kind"), p.get("name")) for p in owned_parts(snapshot)]
        )
        databases = [
            name for kind, name in chosen if kind == "databases" and not str(name).startswith("pgsql:")
        ]
        if len(databases) != 1:
            error("database_name", "A new database name needs exactly one database part to restore.")

    _check_ownership(snapshot, parts, database_name, error)
    if not for_download and account is not None and not account.home:
        file_kinds = ("homedir", "email_accounts")
        if parts or paths:
            wants_files = bool(paths) or any(kind in file_kinds for kind, _ in parts)
        else:
            wants_files = any(p.get("kind") in file_kinds for p in snapshot.parts if isinstance(p, dict))
        if wants_files:
            error(
                "__all__",
                f"Account {account.username} has no home folder on this server; files cannot be restored.",
            )
    if errors:
        raise ValidationError(errors)
    request = RestoreRequest(tuple(parts), tuple(paths), str(target), database_name, confirm_overwrite)
    if not for_download and require_confirmation and not confirm_overwrite:
        live = replaced(snapshot, request)
        if live:
            raise ValidationError(
                {
                    "confirm_overwrite": [
                        f"This restore replaces {'; '.join(live)}. Send confirm_overwrite: true to go "
                        "ahead, or restore into a new folder and a new database name."
                    ]
                }
            )
    return request


def _flag(data: dict[str, Any], key: str, error: Any) -> bool:
    value = data.get(key)
    if value is None or value is False:  # not `in (None, False)`: 0 == False
        return False
    if value is True:
        return True
    error(key, f"{key} is true or false.")
    return False


def _snapshot_parts(snapshot: Snapshot) -> list[dict[str, Any]]:
    return [p for p in snapshot.parts if isinstance(p, dict)]


def owned_parts(snapshot: Snapshot) -> list[dict[str, Any]]:
    """The snapshot's parts without the databases another account owns (a whole-account
    restore skips those, so they count for nothing, e.g. for a new database name)."""
    username = snapshot.account.username if snapshot.account is not None else snapshot.account_name
    owners = Account.owners()
    return [
        p
        for p in _snapshot_parts(snapshot)
        if p.get("kind") != "databases"
        or str(p.get("name", "")).startswith("pgsql:")
        or owners.owns_database(username, str(p.get("name", "")))
    ]


def _check_ownership(
    snapshot: Snapshot, parts: list[tuple[str, str]], database_name: str, error: Any
) -> None:
    """Database and database-user parts, and `database_name`, must be the account's by the
    ownership rule (a backup of alice may hold alice_x_wp, dumped before account alice_x existed)."""
    username = snapshot.account.username if snapshot.account is not None else snapshot.account_name
    owners = Account.owners()
    for kind, name in parts:
        if kind == "databases" and not name.startswith("pgsql:") and not owners.owns_database(username, name):
            error(
                "parts",
                f"{owners.why_not_database(username, name)}; it is not restored or downloaded from here.",
            )
        elif kind == "db_users" and not owners.owns_user(username, name):
            error(
                "parts", f"{owners.why_not_user(username, name)}; it is not restored or downloaded from here."
            )
    if database_name.startswith(f"{username}_") and not owners.owns_database(username, database_name):
        error(
            "database_name", f"{owners.why_not_database(username, database_name)}; choose a name of your own."
        )


def _validate_parts(snapshot: Snapshot, raw: Any, error: Any) -> list[tuple[str, str]]:
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        error("parts", "Give parts as a list of {kind, name}.")
        return []
    known = {(str(p.get("kind", "")), str(p.get("name", ""))) for p in snapshot.parts if isinstance(p, dict)}
    kinds = {kind for kind, _ in known}
    chosen: list[tuple[str, str]] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("kind"), str):
            error("parts", "Each part must be an object with a kind and a name.")
            continue
        kind, name = item["kind"], item.get("name", "")
        if not isinstance(name, str):
            error("parts", f"The name of a {kind} part must be text.")
            continue
        if (kind, name) not in known:
            if kind not in kinds:
                error("parts", f"This backup has no {kind!r} parts.")
            else:
                error("parts", f"This backup has no {kind} part named {name!r}.")
            continue
        if (kind, name) not in chosen:
            chosen.append((kind, name))
    return chosen


def _requested_paths(raw: Any, raw_b64: Any, error: Any) -> list[tuple[str, str]] | None:
    """(field, path) of each path given as text in `paths` or as base64url in `paths_b64`
    (names that are not UTF-8: destinations.names); None when the lists are malformed."""
    lists: list[tuple[str, list[Any]]] = []
    for key, items in (("paths", raw), ("paths_b64", raw_b64)):
        if items in (None, ""):
            continue
        if not isinstance(items, list):
            how = (
                "the base64url of their bytes" if key == "paths_b64" else "paths relative to the home folder"
            )
            error(key, f"Give {key} as a list of {how}.")
            return None
        lists.append((key, items))
    if sum(len(items) for _key, items in lists) > MAX_PATHS:
        error("paths", f"At most {MAX_PATHS} paths at once; choose their folder instead.")
        return None
    given: list[tuple[str, str]] = []
    for key, items in lists:
        for item in items:
            if not isinstance(item, str):
                error(key, "Each path must be a non-empty path relative to the home folder.")
                continue
            if key == "paths":
                if not names.is_text(item):
                    error(key, f"{names.display(item)!r} is not valid text; send it in paths_b64.")
                    continue
                given.append((key, item))
                continue
            try:
                given.append((key, names.from_b64(item)))
            except ValueError as exc:
                error(key, f"{item[:100]!r}: {exc}.")
    return given


def _validate_paths(snapshot: Snapshot, raw: Any, raw_b64: Any, error: Any) -> list[str]:
    given = _requested_paths(raw, raw_b64, error)
    if not given:
        return []
    chosen: list[str] = []
    for key, path in given:
        shown = names.display(path)
        if not path.strip("/"):
            error(key, "Each path must be a non-empty path relative to the home folder.")
            continue
        if path.startswith("/"):
            error(key, f"{shown!r}: give paths relative to the home folder, not absolute.")
            continue
        try:
            clean = listing.normalise(path)
        except ValueError:
            error(key, f"{shown!r}: '..' and NUL are not allowed in paths.")
            continue
        if not snapshot.listing_root or listing.lookup(snapshot.listing_root, clean) is None:
            error(key, f"{shown!r} is not in this backup.")
            continue
        if clean not in chosen:
            chosen.append(clean)
    # A path inside another chosen folder adds nothing.
    return [p for p in chosen if not any(p.startswith(q + "/") for q in chosen if q != p)]


def queue_restore(snapshot: Snapshot, request: RestoreRequest, user: Any) -> QueueItem:
    """Queue a restore of `snapshot` into its own account (validate the request first)."""
    return _enqueue(QueueItem.Kind.RESTORE, "restore", snapshot, request, user)


def queue_download(snapshot: Snapshot, request: RestoreRequest, user: Any) -> QueueItem:
    """Queue the preparation of a download (validate the request first)."""
    return _enqueue(QueueItem.Kind.DOWNLOAD, "download", snapshot, request, user)


def submit(snapshot: Snapshot, data: dict[str, Any], user: Any, *, download: bool) -> QueueItem:
    """Check a restore or download request (raises ValidationError) and queue it; QueueFull
    when the client already has as many queued as they may."""
    from .limits import check_client_queue

    checked = validate_request(snapshot, data, for_download=download)
    with transaction.atomic():  # the count and the new item together: two requests cannot both pass
        check_client_queue(user)
        return (queue_download if download else queue_restore)(snapshot, checked, user)


def _enqueue(kind: str, verb: str, snapshot: Snapshot, request: RestoreRequest, user: Any) -> QueueItem:
    with transaction.atomic():
        return queue.enqueue(
            kind,
            title=f"{verb} {snapshot.account_name} from {snapshot.created:%Y-%m-%d %H:%M}",
            account=snapshot.account,
            snapshot=snapshot,
            destination=snapshot.destination,
            requested_by=user,
            params=request.to_params(),
        )


# --- plans ------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What a request means for one snapshot, in engine terms."""

    whole_home: bool = False
    paths: list[str] = field(default_factory=list)  # home-relative
    mailboxes: list[str] = field(default_factory=list)  # box@domain (without the whole home)
    databases: list[str] = field(default_factory=list)
    db_users: set[str] | None = field(default_factory=set)  # None: every user
    config: list[tuple[str, str]] = field(default_factory=list)  # config parts (downloads only)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    overwrite: bool = False
    database_name: str = ""
    admin: bool = False  # asked by an admin: files the account's uid cannot read are included

    @property
    def wants_files(self) -> bool:
        return self.whole_home or bool(self.paths) or bool(self.mailboxes)

    def mail_domains(self) -> dict[str, set[str]]:
        domains: dict[str, set[str]] = {}
        for box in self.mailboxes:
            name, _, domain = box.rpartition("@")
            domains.setdefault(domain, set()).add(name)
        return domains

    def covers_home_path(self, rel: str) -> bool:
        """Whether home path `rel` is restored whole (the home, or a chosen path holds it)."""
        return self.whole_home or any(rel == p or rel.startswith(p + "/") for p in self.paths)


def part_label(kind: str, name: str) -> str:
    return f"{kind}: {name}" if name else kind


def build_plan(snapshot: Snapshot, request: RestoreRequest, *, for_download: bool = False) -> Plan:
    plan = Plan(overwrite=request.target == "overwrite", database_name=request.database_name)
    parts = request.parts
    if request.everything:
        parts = tuple((str(p.get("kind", "")), str(p.get("name", ""))) for p in snapshot.parts)
    plan.paths = list(request.paths)
    db_users: set[str] = set()
    all_users = False
    owners = Account.owners()
    username = snapshot.account.username if snapshot.account is not None else snapshot.account_name
    for kind, name in parts:
        if kind == "homedir":
            plan.whole_home = True
        elif kind == "email_accounts":
            plan.mailboxes.append(name)
        elif kind == "databases":
            if name.startswith("pgsql:"):
                if for_download:
                    plan.config.append((kind, name))
                else:
                    plan.skipped.append(
                        (part_label(kind, name), "PostgreSQL databases are not restored; download it instead")
                    )
                continue
            if not owners.owns_database(username, name):  # whole backups: the account's own only
                plan.skipped.append((part_label(kind, name), owners.why_not_database(username, name)))
                continue
            plan.databases.append(name)
        elif kind == "db_users":
            if request.everything:
                all_users = True
            else:
                db_users.add(name)
        elif kind in CONFIG_KINDS:
            if for_download:
                plan.config.append((kind, name))
            else:
                plan.skipped.append((part_label(kind, name), CONFIG_REASON))
        else:
            plan.skipped.append((part_label(kind, name), "this kind of part cannot be restored"))
    plan.db_users = None if all_users else db_users
    if plan.whole_home:
        plan.paths = []
        plan.mailboxes = []
    return plan


# --- what a request will do, in words ------------------------------------------------------------

NEW_FOLDER_PATTERN = "restore-YYYY-MM-DD-HHMMSS/"
_NAMED = 3  # how many paths a summary names before it only counts


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def files_phrase(snapshot: Snapshot, plan: Plan) -> str:
    """The home files and mailboxes of `plan`, e.g. "2 files and 1 folder (a, b, c)"."""
    if plan.whole_home:
        return "the whole home folder"
    kinds: dict[str, int] = {}
    for path in plan.paths:
        entry = listing.lookup(snapshot.listing_root, path) if snapshot.listing_root else None
        kind = "folder" if entry is not None and entry.type == "dir" else "file"
        kinds[kind] = kinds.get(kind, 0) + 1
    pieces = [_count(kinds[kind], kind) for kind in ("file", "folder") if kind in kinds]
    if plan.mailboxes:
        boxes = len(plan.mailboxes)
        pieces.append(f"{boxes} mailbox{'' if boxes == 1 else 'es'}")
    named = [names.display(path) for path in plan.paths] + plan.mailboxes
    shown = ", ".join(named[:_NAMED]) + (", …" if len(named) > _NAMED else "")
    return f"{' and '.join(pieces)} ({shown})"


def replaced(snapshot: Snapshot, request: RestoreRequest) -> list[str]:
    """The live data a restore of `request` replaces, in words; empty when it replaces nothing.

    Target ``overwrite`` always counts (it may replace files or a database of the new name),
    and so does a database restored under its own name: the API and the pages ask for an
    explicit confirmation of exactly these."""
    plan = build_plan(snapshot, request)
    home = snapshot.account.home if snapshot.account is not None and snapshot.account.home else ""
    found: list[str] = []
    if plan.overwrite and plan.wants_files:
        found.append(f"the current files of {files_phrase(snapshot, plan)} in {home or 'the home folder'}")
    for database in plan.databases:
        if not plan.database_name:
            found.append(f"the live database {database}")
        elif plan.overwrite:
            found.append(f"the database {plan.database_name}, if it exists")
    if plan.overwrite and not found:
        found.append("the current files and databases of the same names")
    return found


def describe(snapshot: Snapshot, request: RestoreRequest) -> list[str]:
    """What running restore `request` will do, one line per kind of thing, for the page that
    asks first (e.g. "3 files (…) into a new folder restore-YYYY-MM-DD-HHMMSS/ in /home/bob")."""
    plan = build_plan(snapshot, request)
    home = snapshot.account.home if snapshot.account is not None and snapshot.account.home else ""
    lines: list[str] = []
    if plan.wants_files:
        files = files_phrase(snapshot, plan)
        if plan.overwrite:
            lines.append(f"{files} over the current files in {home}")
        else:
            lines.append(f"{files} into a new folder {NEW_FOLDER_PATTERN} in {home}")
    for database in plan.databases:
        if plan.database_name:
            lines.append(f"database {database} into {plan.database_name} (a new database)")
        else:
            lines.append(f"database {database} over the live database {database}")
    if plan.db_users is None:
        lines.append("the database users and grants of the backup")
    elif plan.db_users:
        lines.append(f"database users and grants: {', '.join(sorted(plan.db_users))}")
    for label, reason in plan.skipped:
        lines.append(f"not restored: {label} ({reason})")
    return lines


# --- results ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a run did, turned into the queue item's result."""

    target: str = ""
    folder: str = ""
    restored: int = 0
    failed: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    skipped_count: int = 0
    databases: list[dict[str, Any]] = field(default_factory=list)
    db_users: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def skip(self, path: str, reason: str, *, failure: bool = False) -> None:
        self.skipped_count += 1
        if failure:
            self.failed += 1
        if len(self.skipped) < MAX_SKIPPED:
            # The result is JSON: a name that is not UTF-8 is kept in its display form.
            self.skipped.append({"path": names.display(path), "reason": names.display(reason)})

    def result(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "target": self.target,
            "restored": self.restored,
            "skipped": self.skipped,
        }
        if self.folder:
            result["folder"] = self.folder
        if self.skipped_count > len(self.skipped):
            result["skipped_total"] = self.skipped_count
        if self.databases:
            result["databases"] = self.databases
        if self.db_users:
            result["db_users"] = self.db_users
        if self.notes:
            result["notes"] = self.notes
        if self.failed:
            if not self.restored:
                raise RuntimeError(
                    "Nothing could be restored: "
                    + "; ".join(f"{s['path']}: {s['reason']}" for s in self.skipped[:5])
                )
            result["status"] = "partial"
            result["error"] = f"{self.failed} items could not be restored (see skipped)"
        return result


# --- the home folder ------------------------------------------------------------------------

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


# --- databases --------------------------------------------------------------------------------

DumpWriter = Callable[[Any], None]


def restore_databases(
    account: Account,
    plan: Plan,
    progress: queue.EngineProgress,
    outcome: Outcome,
    jobs: list[tuple[str, DumpWriter, str, str]],
) -> None:
    """Restore each (source name, dump writer, charset, collation) in turn; failures are recorded."""
    for source, write_dump, charset, collation in jobs:
        restore_database_part(account, plan, progress, outcome, source, write_dump, charset, collation)


def restore_database_part(
    account: Account,
    plan: Plan,
    progress: queue.EngineProgress,
    outcome: Outcome,
    source: str,
    write_dump: DumpWriter,
    charset: str = "",
    collation: str = "",
) -> None:
    from destinations.formats.cpanel.tarsafe import ArchiveError

    from . import dbrestore, mysql

    target = plan.database_name or source
    # A new name is created only over an existing database when the request says overwrite;
    # the backup's own name always means "over the existing database".
    overwrite = plan.overwrite if plan.database_name else True
    progress.reporter.check_abort()
    progress.log(f"Database {source}: restoring into {target}")
    try:
        done = dbrestore.restore_database(
            mysql.server(),
            account_name=account.username,
            listed=[str(name) for name in account.databases or []],
            owners=Account.owners(),
            source=source,
            target=target,
            overwrite=overwrite,
            write_dump=write_dump,
            charset=charset,
            collation=collation,
        )
    except native.BackupAborted:
        raise
    except (
        dbrestore.DatabaseRestoreError,
        mysql.MysqlError,
        native.NativeError,
        FtpError,
        ArchiveError,
        OSError,
        KeyError,
        zstandard.ZstdError,
    ) as exc:
        message = getattr(exc, "message", None) or str(exc)
        progress.log(f"Database {source}: failed: {message}")
        outcome.skip(part_label("databases", source), f"failed: {message}", failure=True)
        outcome.databases.append({"source": source, "target": target, "status": "failed", "error": message})
        return
    outcome.restored += 1
    entry: dict[str, Any] = {"source": source, "target": target, "status": "restored", "how": done.how}
    if done.notes:
        entry["notes"] = done.notes
    outcome.databases.append(entry)
    progress.log(f"Database {source}: restored into {target} ({done.how})")


# --- running --------------------------------------------------------------------------------


def open_session(destination: Destination) -> FtpSession:
    from .backup import open_session as open_backup_session

    return open_backup_session(destination)


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


def load_request(snapshot: Snapshot, params: Any, *, for_download: bool = False) -> RestoreRequest:
    try:
        return validate_request(snapshot, params, for_download=for_download)
    except ValidationError as exc:
        raise RestoreRefused("; ".join(exc.messages)) from None


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


def run(item: QueueItem, reporter: queue.Reporter) -> dict[str, Any]:
    """The restore task's body (jobs.tasks.run_restore)."""
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
            from . import restore_native

            restore_native.restore(snapshot, account, plan, session, progress, outcome)
        else:
            from . import restore_cpanel

            restore_cpanel.restore(snapshot, account, plan, session, progress, outcome)
    targets = [outcome.folder] if outcome.folder else []
    targets += [f"database {db['target']}" for db in outcome.databases if db.get("status") == "restored"]
    outcome.target = ", ".join(targets) or outcome.target
    reporter.log(f"Done: {outcome.restored} restored, {outcome.skipped_count} skipped")
    return outcome.result()


def run_download(item: QueueItem, reporter: queue.Reporter) -> dict[str, Any]:
    from . import downloads

    return downloads.run_download(item, reporter)


def expire_downloads() -> int:
    from . import downloads

    return downloads.expire_downloads()


def write_error(path: str, exc: BaseException) -> str:
    if isinstance(exc, FileExistsError):
        return "exists (not overwritten)"
    if isinstance(exc, UnsafePath):
        return f"refused: {exc}"
    return f"cannot write: {exc}"
