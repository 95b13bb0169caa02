"""Finding cPanel account archives in a recursive listing of a destination: their layouts,
dates, split parts and completeness.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

Layout = Literal[
    "daily",
    "weekly",
    "monthly",
    "legacy_daily",
    "legacy_weekly",
    "legacy_monthly",
    "cpmove",
    "user_backup",
]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One account archive on the destination.

    ``path`` is relative to the destination directory. For a split archive it is the name the
    joined archive would have (no such file exists) and ``parts`` lists the pieces in order;
    otherwise ``parts == (path,)``. ``size`` is the sum of the pieces, ``mtime`` the newest.
    """

    path: str
    layout: Layout
    date: datetime | None
    account_hint: str
    compressed: bool
    incomplete: bool
    size: int
    mtime: datetime | None
    split: bool = False
    parts: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


_DATE_DIR = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_ARCHIVE = re.compile(r"(?P<stem>.+)\.tar(?P<gz>\.gz)?")
_CPMOVE = re.compile(r"cpmove-(?P<user>.+)")
_USER_BACKUP = re.compile(
    r"backup-(?P<mo>\d{1,2})\.(?P<d>\d{1,2})\.(?P<y>\d{4})_(?P<h>\d{2})-(?P<mi>\d{2})-(?P<s>\d{2})_(?P<user>.+)"
)
_SPLIT = re.compile(r"(?P<base>.+\.tar(?:\.gz)?)\.part(?P<n>\d{1,9})")
_LEGACY = {"daily": "legacy_daily", "weekly": "legacy_weekly", "monthly": "legacy_monthly"}
_RETENTION: dict[str, Layout] = {"weekly": "weekly", "monthly": "monthly"}


def _date_folder(name: str) -> datetime | None:
    match = _DATE_DIR.fullmatch(name)
    if not match:
        return None
    try:
        return datetime(int(match[1]), int(match[2]), int(match[3]), tzinfo=UTC)
    except ValueError:
        return None


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _user_backup_date(match: re.Match[str]) -> datetime | None:
    try:
        return datetime(
            int(match["y"]),
            int(match["mo"]),
            int(match["d"]),
            int(match["h"]),
            int(match["mi"]),
            int(match["s"]),
            tzinfo=UTC,
        )
    except ValueError:
        return None


def _hint_from_stem(stem: str) -> tuple[str, Layout | None, datetime | None]:
    """Account hint, name-based layout and date for an archive's name without its extension."""
    match = _CPMOVE.fullmatch(stem)
    if match:
        return match["user"], "cpmove", None
    match = _USER_BACKUP.fullmatch(stem)
    if match:
        return match["user"], "user_backup", _user_backup_date(match)
    return stem, None, None


def _classify_path(path: str) -> tuple[Layout, datetime | None, str, bool, str] | None:
    """(layout, date, account hint, compressed, date folder) for an archive path, or None."""
    parts = path.split("/")
    name = parts[-1]
    archive = _ARCHIVE.fullmatch(name)
    if not archive:
        return None
    stem = archive["stem"]
    compressed = archive["gz"] is not None
    hint, named_layout, named_date = _hint_from_stem(stem)
    if len(parts) >= 3 and parts[-2] == "accounts":
        folder_date = _date_folder(parts[-3])
        if folder_date is not None:
            retention = parts[-4] if len(parts) >= 4 else ""
            layout = _RETENTION.get(retention, "daily")
            return layout, folder_date, hint, compressed, "/".join(parts[:-2])
    if len(parts) >= 3 and parts[-3] == "cpbackup" and parts[-2] in _LEGACY:
        legacy: Layout = "legacy_daily"
        if parts[-2] == "weekly":
            legacy = "legacy_weekly"
        elif parts[-2] == "monthly":
            legacy = "legacy_monthly"
        return legacy, None, hint, compressed, ""
    if len(parts) >= 3 and parts[-2] == "system" and _date_folder(parts[-3]) is not None:
        return None
    if named_layout is not None:
        return named_layout, named_date, hint, compressed, ""
    return None


def discover(entries: Iterable[tuple[str, int, datetime | None]]) -> list[Candidate]:
    """Find account archives in a recursive listing of files: (relative path, size, mtime).

    Recognised: ``[weekly/|monthly/]YYYY-MM-DD/accounts/USER.tar[.gz]`` (at any depth),
    ``cpbackup/{daily,weekly,monthly}/USER.tar[.gz]``, and ``cpmove-USER.tar[.gz]`` /
    ``backup-M.D.YYYY_HH-MM-SS_USER.tar[.gz]`` anywhere; ``.partNNNNN`` pieces of any of them are
    grouped. A ``backup_incomplete`` file in a date folder marks its archives incomplete.
    Everything else (``.master.meta``, ``system/``, incremental folders, ...) is ignored.
    Sorted by date, then path.
    """
    incomplete_folders: set[str] = set()
    singles: list[tuple[str, int, datetime | None]] = []
    split_groups: dict[str, list[tuple[int, str, int, datetime | None]]] = {}
    for path, size, mtime in entries:
        path = path.strip("/")
        parts = path.split("/")
        name = parts[-1]
        if name == "backup_incomplete" and len(parts) >= 2 and _date_folder(parts[-2]) is not None:
            incomplete_folders.add("/".join(parts[:-1]))
            continue
        split = _SPLIT.fullmatch(name)
        if split:
            base = "/".join([*parts[:-1], split["base"]])
            split_groups.setdefault(base, []).append((int(split["n"]), path, size, _aware(mtime)))
            continue
        singles.append((path, size, _aware(mtime)))

    found: list[Candidate] = []
    for path, size, mtime in singles:
        info = _classify_path(path)
        if info is None:
            continue
        layout, date, hint, compressed, folder = info
        found.append(
            Candidate(
                path=path,
                layout=layout,
                date=date or mtime,
                account_hint=hint,
                compressed=compressed,
                incomplete=bool(folder) and folder in incomplete_folders,
                size=size,
                mtime=mtime,
                parts=(path,),
            )
        )
    for base, pieces in split_groups.items():
        info = _classify_path(base)
        if info is None:
            continue
        layout, date, hint, compressed, folder = info
        pieces.sort()
        numbers = [n for n, _, _, _ in pieces]
        sizes = [s for _, _, s, _ in pieces]
        notes: list[str] = []
        if numbers != list(range(numbers[0], numbers[0] + len(numbers))) or numbers[0] not in (0, 1):
            notes.append("split archive has missing or repeated parts")
        if len(set(sizes[:-1])) > 1 or (len(sizes) > 1 and sizes[-1] > sizes[0]):
            notes.append("split archive parts have unexpected sizes")
        mtimes = [m for _, _, _, m in pieces if m is not None]
        newest = max(mtimes) if mtimes else None
        found.append(
            Candidate(
                path=base,
                layout=layout,
                date=date or newest,
                account_hint=hint,
                compressed=compressed,
                incomplete=bool(notes) or (bool(folder) and folder in incomplete_folders),
                size=sum(sizes),
                mtime=newest,
                split=True,
                parts=tuple(p for _, p, _, _ in pieces),
                notes=tuple(notes),
            )
        )
    epoch = datetime.min.replace(tzinfo=UTC)
    found.sort(key=lambda c: (c.date or epoch, c.path))
    return found
