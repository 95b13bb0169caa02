"""Listings: the entries of an MLSD or `LIST -a` answer, and the facts of an MLST reply.

Names a server lists are untrusted: parse_listing drops (and logs) the unsafe ones.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

from .interface import EntryType, RemoteEntry
from .paths import unsafe_name_reason

logger = logging.getLogger(__name__)

_LIST_LINE = re.compile(
    r"^(?P<mode>[-dlbcpsD][-rwxsStTlL]{9})\S?\s+\d+\s+(?:\S+\s+){1,2}?(?P<size>\d+)\s+"
    r"(?P<month>[A-Za-z]{3})\s+(?P<day>\d{1,2})\s+(?P<when>\d{1,2}:\d{2}|\d{4})\s(?P<name>.*)$"
)
_MONTHS = {
    month: number
    for number, month in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1
    )
}


def _mode_bits(text: str) -> int:
    mode = 0
    for index, char in enumerate(text[:9]):
        if char in "rwxst":
            mode |= 1 << (8 - index)
    if text[2] in "sS":
        mode |= 0o4000
    if text[5] in "sS":
        mode |= 0o2000
    if text[8] in "tT":
        mode |= 0o1000
    return mode


def _parse_list_time(month: str, day: str, when: str, now: datetime) -> datetime | None:
    try:
        month_number = _MONTHS[month.lower()]
        if ":" in when:
            hour, minute = (int(x) for x in when.split(":"))
            stamp = datetime(now.year, month_number, int(day), hour, minute, tzinfo=UTC)
            if stamp > now + timedelta(days=1):  # "Dec 31 23:59" seen in January is last year's
                stamp = stamp.replace(year=now.year - 1)
            return stamp
        return datetime(int(when), month_number, int(day), tzinfo=UTC)
    except (KeyError, ValueError):
        return None


def _parse_mlsx_time(value: str | None) -> datetime | None:
    # By hand rather than strptime, which costs more than the rest of a listing line.
    if not value or len(value) < 14 or not value[:14].isdigit():
        return None
    try:
        stamp = datetime(
            int(value[0:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[8:10]),
            int(value[10:12]),
            int(value[12:14]),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    if len(value) > 15 and value[14] == "." and value[15:].isdigit():
        stamp += timedelta(microseconds=int((value[15:] + "000000")[:6]))
    return stamp


def _parse_facts(line: str) -> tuple[str, dict[str, str]]:
    facts_text, _, name = line.partition(" ")
    facts = {}
    for fact in facts_text.split(";"):
        key, sep, value = fact.partition("=")
        if sep:
            facts[key.strip().lower()] = value
    return name, facts


_OCTAL_MODE = re.compile(r"[0-7]{1,6}")


def _entry_from_facts(name: str, facts: dict[str, str]) -> RemoteEntry | None:
    kind = facts.get("type", "").lower()
    if kind in ("cdir", "pdir"):
        return None
    entry_type: EntryType
    if kind == "file":
        entry_type = "file"
    elif kind == "dir":
        entry_type = "dir"
    elif kind.startswith(("os.unix=slink", "os.unix=symlink")):
        entry_type = "link"
    else:
        entry_type = "other"
    size = facts.get("size", "")
    mode = facts.get("unix.mode", "")
    return RemoteEntry(
        name=name,
        type=entry_type,
        size=int(size) if size.isdigit() else None,
        mtime=_parse_mlsx_time(facts.get("modify")),
        mode=int(mode, 8) & 0o7777 if _OCTAL_MODE.fullmatch(mode) else None,
    )


def _entry_from_list_line(line: str, now: datetime) -> RemoteEntry | None:
    match = _LIST_LINE.match(line)
    if not match:
        return None  # "total 12", a blank line, or a format we do not know
    mode_text = match["mode"]
    name = match["name"]
    entry_type: EntryType
    if mode_text[0] == "-":
        entry_type = "file"
    elif mode_text[0] in "dD":
        entry_type = "dir"
    elif mode_text[0] == "l":
        entry_type = "link"
        name = name.split(" -> ", 1)[0]
    else:
        entry_type = "other"
    if name in (".", ".."):
        return None
    return RemoteEntry(
        name=name,
        type=entry_type,
        size=int(match["size"]) if entry_type == "file" else None,
        mtime=_parse_list_time(match["month"], match["day"], match["when"], now),
        mode=_mode_bits(mode_text[1:]),
    )


def parse_listing(data: bytes, *, mlsd: bool, where: str = "") -> list[RemoteEntry]:
    """Entries of an MLSD or `LIST -a` answer; unsafe names are dropped and logged."""
    entries = []
    now = datetime.now(UTC)
    for raw in data.split(b"\n"):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw.strip():
            continue
        line = raw.decode("utf-8", "surrogateescape")
        if mlsd:
            name, facts = _parse_facts(line)
            entry = _entry_from_facts(name, facts)  # None for cdir/pdir: "." and ".." as such
        else:
            entry = _entry_from_list_line(line, now)
        if entry is None:
            continue
        reason = unsafe_name_reason(entry.name)
        if reason:
            logger.warning(
                "dropped a name with %s from the listing of %s: %r", reason, where or "/", entry.name
            )
            continue
        entries.append(entry)
    return entries
