"""Restore and download requests: validating what was asked (`validate_request`), what it will
do in words (`describe`, `replaced`), and queueing it (`submit`).

A request is checked twice: when it is asked for (the API, the pages) and again by the worker
that runs it (`load_request`), which may see a backup or an account that changed meanwhile.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from destinations import listing, names
from jobs.models import Snapshot

from .. import queue
from ..limits import check_client_queue
from ..models import Account, QueueItem
from .outcome import RestoreRefused
from .plan import Plan, RestoreRequest, build_plan

TARGETS = ("new_folder", "overwrite")
MAX_PATHS = 10_000
_REQUEST_KEYS = frozenset(
    {"parts", "paths", "paths_b64", "target", "database_name", "whole_account", "confirm_overwrite"}
)
_DB_NAME_REST = re.compile(r"[A-Za-z0-9_]+")


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


def load_request(snapshot: Snapshot, params: Any, *, for_download: bool = False) -> RestoreRequest:
    try:
        return validate_request(snapshot, params, for_download=for_download)
    except ValidationError as exc:
        raise RestoreRefused("; ".join(exc.messages)) from None
