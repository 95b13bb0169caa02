"""Shared by the safe tar reader's modules: limits, the member record, problems and what one
pass found, and the checks on member names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from backupsite.errors import Error

ENCODING = "utf-8"
ERRORS = "surrogateescape"  # undecodable bytes survive as str and round-trip with os.fsencode

MemberType = Literal["file", "dir", "symlink", "hardlink"]

# Flags that mean reading stopped early: the member list is incomplete.
FATAL_FLAGS = frozenset({"truncated", "not_tar", "too_many_members", "absurd_size", "too_large"})
MAX_PROBLEMS = 1000  # problems kept verbatim; the rest are only counted


@dataclass(frozen=True, slots=True)
class Limits:
    """Hard caps for one archive. Exceeding a ``max_member*``/``max_total_size`` cap stops reading."""

    max_members: int = 2_000_000
    max_member_size: int = 1 << 40  # 1 TiB: bigger is a forged header, not a file
    max_total_size: int = 1 << 43  # 8 TiB of uncompressed tar
    max_name_bytes: int = 4096  # PATH_MAX
    max_meta_size: int = 1 << 20  # one pax header or GNU long name
    max_text_size: int = 256 * 1024  # text kept for one part
    max_parse_size: int = 16 << 20  # a metadata file read to list items (mysql.sql, proftpdpasswd, ...)
    max_captured_total: int = 64 << 20  # all text and metadata kept in memory for one archive
    max_trailing: int = 16 << 20  # data after the end-of-archive marker that is still read


DEFAULT_LIMITS = Limits()


class Problem(NamedTuple):
    member: str  # printable member name ("" for the archive as a whole)
    reason: str


class ArchiveError(Error):
    """The archive cannot be read to the end (truncated, corrupt, over a limit)."""

    def __init__(self, message: str, flag: str = "truncated") -> None:
        super().__init__(message)
        self.flag = flag


class UnsafeName(ValueError):
    """A member name that must never be used; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Member(NamedTuple):
    """One accepted archive member.

    ``name`` is normalised: '/'-separated, relative, no '.', '..' or empty components, no
    trailing '/'. ``target`` is a symlink's target exactly as stored, or the normalised name of
    the member a hard link points to; "" otherwise. ``size`` is 0 for everything but files.
    """

    name: str
    type: MemberType
    size: int
    mtime: int
    mode: int
    target: str = ""
    uname: str = ""  # owner and group names as the archive's writer recorded them ("" unknown)
    gname: str = ""


# -- names ------------------------------------------------------------------------------------

_DRIVE = re.compile(r"[A-Za-z]:")


def normalize_name(name: str, *, max_bytes: int = DEFAULT_LIMITS.max_name_bytes) -> str:
    """Return the safe, normalised form of a member name or raise ``UnsafeName``.

    "" is the archive root ("./"). Names are str decoded with surrogateescape.
    """
    if (
        len(name) * 4 <= max_bytes
        and "\0" not in name
        and "//" not in name
        and "/." not in name
        and not name.startswith(("/", "."))
        and name[1:2] != ":"
    ):
        return name.rstrip("/")
    if "\0" in name:
        raise UnsafeName("NUL byte in name")
    if name.startswith("/"):
        raise UnsafeName("absolute name")
    if _DRIVE.match(name):
        raise UnsafeName("drive prefix in name")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise UnsafeName("'..' component in name")
        parts.append(part)
    result = "/".join(parts)
    if len(result.encode(ENCODING, ERRORS)) > max_bytes:
        raise UnsafeName(f"name longer than {max_bytes} bytes")
    return result


def link_target_inside(link_name: str, target: str) -> bool:
    """Whether a symlink at ``link_name`` (normalised) pointing to ``target`` stays inside the root.

    Purely lexical, for a restore that wants to keep only links that cannot leave its target.
    """
    if not target or target.startswith("/") or "\0" in target or _DRIVE.match(target):
        return False
    depth = link_name.count("/")  # folders above the link inside the root
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            depth -= 1
            if depth < 0:
                return False
        else:
            depth += 1
    return True


def printable(name: str, limit: int = 300) -> str:
    """A member name fit for a log line: undecodable bytes as \\xNN, control characters escaped."""
    text = name.encode(ENCODING, ERRORS).decode(ENCODING, "backslashreplace")
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- what one pass found ----------------------------------------------------------------------


@dataclass(slots=True)
class ReadState:
    """What one pass has found; shared by an archive's reader and its nested readers."""

    limits: Limits
    flags: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    member_count: int = 0
    stopped: bool = False
    cut_members: set[str] = field(default_factory=set)  # yielded, but their data is incomplete
    symlinks: set[str] = field(default_factory=set)
    clear_folders: set[str] = field(default_factory=set)  # checked: no symlink on their way
    files: set[str] = field(default_factory=set)

    def problem(self, flag: str | None, member: str, reason: str, *, stop: bool = False) -> None:
        if flag:
            self.flags.add(flag)
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(printable(member), reason))
        if stop:
            self.stopped = True

    @property
    def fatal(self) -> bool:
        return not self.flags.isdisjoint(FATAL_FLAGS)
