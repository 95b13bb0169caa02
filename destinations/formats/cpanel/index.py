"""Indexing a cPanel account archive in one streaming pass (``read_archive``): the account,
its restorable parts with their sizes, the home folder listing, and what was wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from destinations import names

from .contents import as_text, content_parts, keep_texts, parse_cp_file
from .parts import HOMEDIR, PART_KINDS, Part, PartKind, classify, home_parts, mailbox
from .tarsafe import (
    DEFAULT_LIMITS,
    FATAL_FLAGS,
    ByteStream,
    Limits,
    Member,
    MemberType,
    Problem,
    TarReader,
    open_tar,
)


class HomeEntry(NamedTuple):
    """One entry of the home folder; ``path`` is relative to it.

    ``target``: a symlink's target as stored, or the home-relative path a hard link points to.
    ``implied``: a folder that has no member of its own but holds members.
    """

    path: str
    type: MemberType
    size: int
    mtime: int
    mode: int
    target: str = ""
    implied: bool = False


@dataclass(slots=True)
class ArchiveIndex:
    """What one pass over an account archive found.

    ``top`` is the prefix of the account folder inside the archive, with its trailing '/'
    ("cpmove-bob/"), or "" when the account files sit at the root. ``total_size`` is the
    uncompressed tar size read. ``member_count`` counts every member header (refused ones too).
    Flags: ``unsafe_members``, ``special_files``, ``unsupported_members``, ``absurd_size``,
    ``too_many_members``, ``too_large``, ``truncated``, ``not_tar``, ``nested_archive``,
    ``no_account``, ``ambiguous_account``, ``account_mismatch``.
    """

    top: str = ""
    account: str | None = None
    account_info: dict[str, str] = field(default_factory=dict)
    parts: list[Part] = field(default_factory=list)
    home_entries: list[HomeEntry] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    total_size: int = 0
    member_count: int = 0
    compressed: bool = False
    homedir_tar: bool = False

    @property
    def complete(self) -> bool:
        """False when reading stopped before the end of the archive."""
        return self.flags.isdisjoint(FATAL_FLAGS)

    def part(self, kind: PartKind, name: str = "") -> Part | None:
        for part in self.parts:
            if part.kind == kind and part.name == name:
                return part
        return None


_USER = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_TEXT_DIRS = frozenset({"va", "vad", "vf", "cron", "dnszones", "cp"})
_PARSED_FILES = frozenset({"proftpdpasswd", "mysql.sql", "sds", "sds2", "pds", "addons"})


_NOTHING = (False, False, False)


def _folder_rule(folder: str) -> tuple[bool, bool, bool]:
    """What to read from files in ``folder`` (an archive path, maybe with the top folder in front):
    (top-level files parsed for items, text kept for display, ``homedir/etc/<domain>/passwd``)."""
    seg = folder.split("/") if folder else []
    depth = len(seg)
    rule = (
        depth <= 1,  # the root or the top folder
        (depth == 1 and seg[0] in _TEXT_DIRS) or (depth == 2 and seg[1] in _TEXT_DIRS),
        (depth == 3 and seg[0] == "homedir" and seg[1] == "etc")
        or (depth == 4 and seg[1] == "homedir" and seg[2] == "etc"),
    )
    return _NOTHING if rule == _NOTHING else rule


def _is_homedir_tar(name: str) -> bool:
    return name.endswith("homedir.tar") and (
        name == "homedir.tar" or (name.endswith("/homedir.tar") and name.count("/") == 1)
    )


def _is_cp_file(name: str) -> bool:
    seg = name.split("/")
    return (len(seg) == 2 and seg[0] == "cp" and bool(seg[1])) or (
        len(seg) == 3 and seg[1] == "cp" and bool(seg[2])
    )


class _Indexer:
    def __init__(self, reader: TarReader, limits: Limits) -> None:
        self.reader = reader
        self.limits = limits
        self.records: list[Member] = []
        self.captured: dict[str, tuple[bytes, bool]] = {}
        self.captured_total = 0
        self.cp_files: list[str] = []
        self.homedir_tar: str | None = None
        self.total_size = 0
        self._rules: dict[str, tuple[bool, bool, bool]] = {}

    def run(self) -> None:
        records = self.records
        rules = self._rules
        for member in self.reader:
            records.append(member)
            if member.type != "file":
                continue
            name = member.name
            if name.endswith("homedir.tar") and _is_homedir_tar(name):
                self._read_nested(member)
                continue
            # Most members sit in folders where nothing is read: decide once per folder.
            slash = name.rfind("/")
            folder = name[:slash] if slash >= 0 else ""
            rule = rules.get(folder)
            if rule is None:
                rule = rules[folder] = _folder_rule(folder)
            if rule is not _NOTHING:
                self._maybe_capture(name, outer=True)

    def _maybe_capture(self, name: str, *, outer: bool) -> None:
        slash = name.rfind("/")
        folder = name[:slash] if slash >= 0 else ""
        rule = self._rules.get(folder)
        if rule is None:
            rule = self._rules[folder] = _folder_rule(folder)
        base = name[slash + 1 :]
        if rule[1]:
            kind = 1
        elif (rule[0] and base in _PARSED_FILES) or (rule[2] and base == "passwd"):
            kind = 2
        else:
            return
        if outer and _is_cp_file(name):
            self.cp_files.append(name)
        cap = self.limits.max_text_size if kind == 1 else self.limits.max_parse_size
        if self.captured_total + cap > self.limits.max_captured_total:
            self.reader.state.problem(None, name, "not read: too much metadata in this archive")
            return
        data, whole = self.reader.read_data(cap)
        self.captured_total += len(data)
        self.captured[name] = (data, whole)

    def _read_nested(self, member: Member) -> None:
        state = self.reader.state
        if self.homedir_tar is not None:
            state.problem("nested_archive", member.name, "a second homedir.tar is not read")
            return
        self.homedir_tar = member.name
        records = self.records
        nested = self.reader.open_nested(prefix=member.name[: -len(".tar")] + "/", label=member.name)
        reader, self.reader = self.reader, nested
        try:
            for inner in nested:
                records.append(inner)
                if inner.type == "file" and inner.name.endswith("/passwd"):
                    self._maybe_capture(inner.name, outer=False)
        finally:
            self.reader = reader
        if not nested.complete and not state.stopped:
            state.problem("truncated", member.name, "homedir.tar ends without its end-of-archive marker")

    # -- after the pass --

    def _choose_account(self, index: ArchiveIndex, hint: str | None) -> None:
        flags = index.flags
        root = [n for n in self.cp_files if n.count("/") == 1]
        chosen = root
        top = ""
        if not root and self.cp_files:
            tops = list(dict.fromkeys(n.split("/", 1)[0] + "/" for n in self.cp_files))
            top = tops[0]
            if len(tops) > 1:
                flags.add("ambiguous_account")
                index.problems.append(Problem("", f"account files in several folders: {', '.join(tops)}"))
            chosen = [n for n in self.cp_files if n.startswith(top)]
        elif not root and self.records:
            first = self.records[0]
            if "/" in first.name or first.type == "dir":
                top = first.name.split("/", 1)[0] + "/"
        index.top = top
        users = list(dict.fromkeys(n.rsplit("/", 1)[1] for n in chosen))
        if not users:
            flags.add("no_account")
            index.problems.append(Problem("", "no cp/<user> file: the account is unknown"))
            return
        if len(users) > 1 or "ambiguous_account" in flags:
            flags.update({"ambiguous_account", "no_account"})
            index.problems.append(Problem("", f"several account files: {', '.join(sorted(users))}"))
            return
        user = users[0]
        data, _ = self.captured.get(chosen[0], (b"", True))
        index.account_info = parse_cp_file(as_text(data))
        if not _USER.fullmatch(user):
            flags.add("no_account")
            index.problems.append(Problem(chosen[0], "the account name is not a valid cPanel user name"))
            return
        index.account = user
        declared = index.account_info.get("USER")
        if declared and declared != user:
            flags.add("account_mismatch")
            index.problems.append(Problem(chosen[0], f"the file says USER={declared}"))
        if hint is not None and hint != user:
            flags.add("account_mismatch")
            index.problems.append(Problem(chosen[0], f"archive named for {hint!r} holds account {user!r}"))

    def build(self, hint: str | None) -> ArchiveIndex:
        state = self.reader.state
        index = ArchiveIndex(
            flags=state.flags,
            problems=state.problems,
            member_count=state.member_count,
            compressed=self.reader.compressed,
            homedir_tar=self.homedir_tar is not None,
        )
        self._choose_account(index, hint)
        top = index.top
        cut = len(top)
        home_prefix = top + "homedir/"
        home_cut = len(home_prefix)
        home: dict[str, HomeEntry] = {}
        others: dict[str, Member] = {}
        stray = 0
        cut_members = state.cut_members
        for member in self.records:
            name = member.name
            if cut_members and name in cut_members:
                continue
            if not name.startswith(top):
                if name + "/" != top:
                    stray += 1
                continue
            if not name.startswith(home_prefix):
                others[name[cut:]] = member
                continue
            rel = name[home_cut:]
            target = member.target
            if member.type == "hardlink":
                if not target.startswith(home_prefix):
                    state.problem("unsafe_members", name, "hard link points outside the home folder")
                    continue
                target = target[home_cut:]
            slash = rel.rfind("/")
            if slash != -1 and rel[:slash] not in home:
                _imply_folders(home, rel[:slash], member.mtime)
            home[rel] = HomeEntry(rel, member.type, member.size, member.mtime, member.mode, target)
        if stray:
            state.problem(None, "", f"{stray} members outside the account folder {top!r} ignored")
        index.home_entries = list(home.values())

        sizes: dict[tuple[PartKind, str], list[int]] = {}
        for rel, member in others.items():
            for key in classify(rel):
                if "*" in key[1] or not names.is_text(key[1]):
                    continue  # a part's name is text: one made of bytes that are not UTF-8 is no part
                acc = sizes.setdefault(key, [0, 0])
                acc[0] += member.size
                acc[1] += 1
        home_size = home_count = 0
        in_box: dict[str, list[int] | None] = {}  # folder inside a Maildir -> its box's sums
        for rel, entry in home.items():
            if entry.implied:
                continue
            home_size += entry.size
            home_count += 1
            if rel[:1] not in "mes":  # mail/, etc/, ssl: the only places of other parts
                continue
            folder = rel[: rel.rfind("/")]
            if folder.count("/") >= 2 and folder.startswith("mail/"):
                if folder not in in_box:  # every file below mail/<domain>/<box>/ shares the answer
                    box = mailbox(folder)
                    in_box[folder] = sizes.setdefault(("email_accounts", box), [0, 0]) if box else None
                box_acc = in_box[folder]
                if box_acc is not None:
                    box_acc[0] += entry.size
                    box_acc[1] += 1
                continue
            for key in home_parts(rel)[1:]:
                if "*" not in key[1]:
                    acc = sizes.setdefault(key, [0, 0])
                    acc[0] += entry.size
                    acc[1] += 1
        if home_count or "homedir" in others:
            acc = sizes.setdefault(HOMEDIR, [0, 0])
            acc[0] += home_size
            acc[1] += home_count
        parts = {key: Part(key[0], key[1], acc[0], acc[1]) for key, acc in sizes.items()}
        content_parts(parts, top, self.captured, self._lines)
        keep_texts(parts, top, index.account_info, self.captured, self.limits.max_text_size)
        order = {kind: i for i, kind in enumerate(PART_KINDS)}
        index.parts = sorted(parts.values(), key=lambda p: (order[p.kind], p.name))
        index.total_size = self.total_size
        return index

    def _lines(self, name: str) -> Iterator[bytes]:
        data, whole = self.captured.get(name, (b"", True))
        if not whole:
            self.reader.state.problem(None, name, "too large: only its beginning was read")
        yield from data.splitlines(keepends=True)


def _imply_folders(home: dict[str, HomeEntry], folder: str, mtime: int) -> None:
    missing: list[str] = []
    while folder and folder not in home:
        missing.append(folder)
        slash = folder.rfind("/")
        folder = folder[:slash] if slash != -1 else ""
    for path in reversed(missing):
        home[path] = HomeEntry(path, "dir", 0, mtime, 0o755, "", True)


def read_archive(
    stream: ByteStream, *, limits: Limits = DEFAULT_LIMITS, account_hint: str | None = None
) -> ArchiveIndex:
    """Index one cPanel account archive (``.tar`` or ``.tar.gz``) read once from ``stream``.

    ``stream`` needs only ``read(n)`` (short reads are fine). With ``account_hint`` (the name the
    file carries) a different account inside is flagged ``account_mismatch``. Never raises for
    bad archive content; see the package docstring.
    """
    reader = open_tar(stream, limits=limits)
    indexer = _Indexer(reader, limits)
    indexer.run()
    indexer.total_size = reader.offset
    reader.finish()
    return indexer.build(account_hint)
