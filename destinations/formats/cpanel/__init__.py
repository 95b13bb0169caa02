"""cPanel account backups on a destination: finding them, indexing them, reading parts back.

Plain Python (no Django): the Django layer lists the destination, feeds downloads in, and
stores what comes out. See ``/work/shared/reference/cpanel-backup-format.md`` for the format.

* ``discover(entries)`` finds account archives in a recursive listing.
* ``read_archive(stream)`` reads one archive once, streaming, and returns an ``ArchiveIndex``:
  the account (from ``cp/<user>``, never from the file or folder name), its restorable parts,
  the home folder listing, and what was wrong with the archive.
* ``classify(relpath)`` says which parts a member belongs to; the indexer and the restore use
  it alike, and ``part_selector`` turns chosen parts into a member filter for ``iter_members``.
* ``iter_members(stream, select, top=...)`` yields the chosen safe members with their data.

Decisions:

* Split archives (``X.tar.gz.part00001`` ...) are supported: ``discover`` returns one candidate
  with ``split=True`` and ``parts`` in order; read them by chaining the downloads of ``parts``
  into one stream (``IterStream(chain(...))``). Missing or odd-sized parts mark it incomplete.
* Corrupt or truncated archives never raise from ``read_archive``: the index comes back with
  ``truncated`` (or ``not_tar``) in ``flags``, a message in ``problems``, and what could be read
  before the damage. ``ArchiveIndex.complete`` is False whenever reading stopped early.
  ``iter_members`` raises ``ArchiveError`` at the point where the damage is met, because a
  restore must not report success on a partial read. Errors from the caller's stream itself
  (network, FTP) propagate unchanged in both.
* Dates: folder and file-name dates are the cPanel server's local date; they are returned as
  aware datetimes at UTC. FTP mtimes without a zone are taken as UTC.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, NamedTuple

from destinations import names

from .tarsafe import (
    DEFAULT_LIMITS,
    FATAL_FLAGS,
    ArchiveError,
    ByteStream,
    IterStream,
    Limits,
    Member,
    MemberData,
    MemberType,
    Problem,
    TarReader,
    open_tar,
)

__all__ = [
    "DEFAULT_LIMITS",
    "PART_KINDS",
    "ArchiveError",
    "ArchiveIndex",
    "Candidate",
    "HomeEntry",
    "IterStream",
    "Layout",
    "Limits",
    "Member",
    "MemberData",
    "Part",
    "PartKind",
    "Problem",
    "classify",
    "discover",
    "iter_members",
    "parse_cp_file",
    "part_selector",
    "read_archive",
]

PartKind = Literal[
    "homedir",
    "databases",
    "db_users",
    "email_accounts",
    "forwarders_filters",
    "cron",
    "dns_zones",
    "ssl",
    "ftp_accounts",
    "domains",
    "account_settings",
]
PART_KINDS: tuple[PartKind, ...] = typing.get_args(PartKind)
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

# ============================================================================================
# Layout discovery
# ============================================================================================


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


# ============================================================================================
# Parts
# ============================================================================================

_HOMEDIR: tuple[PartKind, str] = ("homedir", "")
_TOP_FILES: dict[str, list[tuple[PartKind, str]]] = {
    "mysql.sql": [("db_users", "*")],
    "mysql.sql-auth.json": [("db_users", "*")],
    "proftpdpasswd": [("ftp_accounts", "*")],
    "sds": [("domains", "")],
    "sds2": [("domains", "")],
    "pds": [("domains", "")],
    "addons": [("domains", "")],
    "shadow": [("account_settings", "")],
    "shell": [("account_settings", "")],
    "quota": [("account_settings", "")],
}
_SSL_SUFFIXES = (".crt", ".key", ".cabundle", ".csr", ".pem")
_MAIL_FILES = frozenset({"passwd", "shadow", "quota"})


def _is_domain(name: str) -> bool:
    return "." in name and not name.startswith(".")


def _mailbox(home_rel: str) -> str | None:
    """'box@domain' for a path inside ``mail/<domain>/<box>/`` of the home folder. A folder
    whose name is not UTF-8 is no email address: it stays in the home folder part."""
    seg = home_rel.split("/", 3)
    if (
        len(seg) >= 3
        and _is_domain(seg[1])
        and seg[2]
        and not seg[2].startswith(".")
        and names.is_text(seg[1])
        and names.is_text(seg[2])
    ):
        return f"{seg[2]}@{seg[1]}"
    return None


def _home_parts(home_rel: str) -> list[tuple[PartKind, str]]:
    """Parts of a path relative to the home folder (always the home folder itself, maybe more)."""
    if home_rel.startswith("mail/"):
        box = _mailbox(home_rel)
        if box:
            return [_HOMEDIR, ("email_accounts", box)]
    elif home_rel.startswith("etc/"):
        seg = home_rel.split("/")
        if len(seg) == 3 and seg[2] in _MAIL_FILES and _is_domain(seg[1]):
            return [_HOMEDIR, ("email_accounts", "*@" + seg[1])]
    elif home_rel == "ssl" or home_rel.startswith("ssl/"):
        return [_HOMEDIR, ("ssl", "*")]
    return [_HOMEDIR]


def _strip_ssl_suffix(name: str) -> str:
    for suffix in _SSL_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def classify(member_relpath: str) -> list[tuple[PartKind, str]]:
    """The parts a member belongs to; ``member_relpath`` is relative to the archive's top folder.

    Names follow the part's item (database, db user, box@domain, domain, zone, FTP login);
    ``homedir``, ``cron``, ``domains`` and ``account_settings`` have the name "". Two kinds of
    wildcard name mark a file shared by several items, whose items are found in its content:
    ``"*"`` (``mysql.sql`` for every db user, ``proftpdpasswd`` for every FTP login, SSL storage
    in the home folder for every certificate) and ``"*@domain"`` (``homedir/etc/<domain>/passwd``,
    ``shadow``, ``quota`` for every box of that domain). ``part_selector`` understands both.
    ``homedir.tar`` itself belongs to nothing: its members are read as ``homedir/...``.
    """
    head, sep, tail = member_relpath.partition("/")
    if head == "homedir":
        return _home_parts(tail) if sep else [_HOMEDIR]
    if not sep:
        return list(_TOP_FILES.get(head, ()))
    if not tail:
        return []
    item, _, _ = tail.partition("/")
    if head == "cp":
        return [("account_settings", "")]
    if head == "userdata":
        return [("domains", "")]
    if head == "ssl":
        return [("ssl", "*")]
    if head == "apache_tls":
        return [("ssl", item)]
    if head in ("sslcerts", "sslkeys"):
        return [("ssl", _strip_ssl_suffix(item))]
    if item != tail:  # everything below is one level deep
        return []
    if head in ("va", "vad", "vf"):
        return [("forwarders_filters", tail)]
    if head == "cron":
        return [("cron", "")]
    if head == "dnszones":
        return [("dns_zones", tail[:-3])] if tail.endswith(".db") and len(tail) > 3 else []
    if head == "mysql":
        for suffix in (".sql", ".create", ".sql.gz"):
            if tail.endswith(suffix) and len(tail) > len(suffix):
                return [("databases", tail[: -len(suffix)])]
        return []
    if head == "mysql-timestamps":
        return [("databases", tail)]
    if head == "psql":
        stem = tail.rsplit(".", 1)[0] if "." in tail else tail
        return [("databases", "pgsql:" + stem)] if stem else []
    return []


def part_selector(parts: Iterable[tuple[PartKind, str]]) -> Callable[[str], bool]:
    """A member filter (relpath -> bool) choosing every member of the given parts.

    Shared files come along: ``mysql.sql`` with any db user, ``proftpdpasswd`` with any FTP
    login, ``homedir/etc/<domain>/passwd`` (and shadow, quota) with any box of that domain. The
    restore takes the lines it needs from them.
    """
    wanted = set(parts)
    kinds = {kind for kind, _ in wanted}
    mail_domains = {name.partition("@")[2] for kind, name in wanted if kind == "email_accounts"}

    def select(relpath: str) -> bool:
        for kind, name in classify(relpath):
            if (kind, name) in wanted:
                return True
            if name == "*" and kind in kinds:
                return True
            if name.startswith("*@") and kind == "email_accounts" and name[2:] in mail_domains:
                return True
        return False

    return select


# ============================================================================================
# Archive index
# ============================================================================================


@dataclass(slots=True)
class Part:
    """One restorable part of an account archive.

    ``size`` rule: the bytes of the archive members that make up the part -
    homedir: every file under ``homedir/`` (or in ``homedir.tar``); databases: ``mysql/<db>.sql``
    + ``.create`` + ``mysql-timestamps/<db>``; email account: its Maildir's files
    (``mail/<domain>/<box>/``; the shared ``etc/<domain>`` files are not counted); db user: its
    lines in ``mysql.sql``; FTP account: its line in ``proftpdpasswd``; forwarders and filters:
    ``va/vad/vf/<domain>``; dns zone: ``dnszones/<zone>.db``; ssl: ``apache_tls/<domain>`` (or
    ``sslcerts/``+``sslkeys/`` of that name); cron: ``cron/*``; domains: ``sds``, ``sds2``,
    ``pds``, ``addons``, ``userdata/*``; account settings: ``cp/*``, ``shadow``, ``shell``,
    ``quota``. Hard links, symlinks and folders count 0 bytes. ``members`` counts archive
    members (content-derived parts: 1, the line's file). ``text`` is kept for cron, dns_zones,
    forwarders_filters and domains (never secrets), at most ``Limits.max_text_size`` bytes.
    """

    kind: PartKind
    name: str
    size: int = 0
    members: int = 0
    text: str | None = None
    text_truncated: bool = False


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
_NO_CRONTAB = re.compile(rb"\s*no crontab for \S+\s*")
_GRANT_TO = re.compile(
    r"""\bTO\s+(?:'((?:[^'\\]|\\.|'')*)'|`([^`]*)`|"([^"]*)"|([\w.$-]+))\s*@""", re.IGNORECASE
)
_USER_STMT = re.compile(
    r"""^(?:CREATE|ALTER)\s+USER\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"""
    r"""(?:'((?:[^'\\]|\\.|'')*)'|`([^`]*)`|"([^"]*)"|([\w.$-]+))\s*@""",
    re.IGNORECASE,
)


def parse_cp_file(text: str) -> dict[str, str]:
    """The KEY=VALUE lines of a ``cp/<user>`` file ('#' lines are comments)."""
    info: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        key = key.strip()
        if eq and key:
            info[key] = value.strip()
    return info


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


def _unquote_user(match: re.Match[str]) -> str:
    quoted = match[1]
    if quoted is not None:
        return re.sub(r"\\(.)|''", lambda m: m[1] if m[1] is not None else "'", quoted)
    return match[2] or match[3] or match[4] or ""


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


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
        index.account_info = parse_cp_file(_text(data))
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
                    box = _mailbox(folder)
                    in_box[folder] = sizes.setdefault(("email_accounts", box), [0, 0]) if box else None
                box_acc = in_box[folder]
                if box_acc is not None:
                    box_acc[0] += entry.size
                    box_acc[1] += 1
                continue
            for key in _home_parts(rel)[1:]:
                if "*" not in key[1]:
                    acc = sizes.setdefault(key, [0, 0])
                    acc[0] += entry.size
                    acc[1] += 1
        if home_count or "homedir" in others:
            acc = sizes.setdefault(_HOMEDIR, [0, 0])
            acc[0] += home_size
            acc[1] += home_count
        parts = {key: Part(key[0], key[1], acc[0], acc[1]) for key, acc in sizes.items()}
        self._content_parts(parts, top)
        self._texts(parts, top, index.account_info)
        order = {kind: i for i, kind in enumerate(PART_KINDS)}
        index.parts = sorted(parts.values(), key=lambda p: (order[p.kind], p.name))
        index.total_size = self.total_size
        return index

    def _lines(self, name: str) -> Iterator[bytes]:
        data, whole = self.captured.get(name, (b"", True))
        if not whole:
            self.reader.state.problem(None, name, "too large: only its beginning was read")
        yield from data.splitlines(keepends=True)

    def _content_parts(self, parts: dict[tuple[PartKind, str], Part], top: str) -> None:
        def add(kind: PartKind, item: str, size: int, members: int = 1) -> None:
            part = parts.get((kind, item))
            if part is None:
                part = parts[(kind, item)] = Part(kind, item)
            part.size += size
            part.members = max(part.members, members)

        for line in self._lines(top + "mysql.sql"):
            text = line.decode("utf-8", "replace").strip()
            upper = text[:12].upper()
            if upper.startswith("GRANT"):
                match = _GRANT_TO.search(text)
            elif upper.startswith(("CREATE USER", "ALTER USER")):
                match = _USER_STMT.search(text)
            else:
                continue
            if match:
                user = _unquote_user(match)
                if user:
                    add("db_users", user, len(line))
        for line in self._lines(top + "proftpdpasswd"):
            login = line.split(b":", 1)[0].strip().decode("utf-8", "replace")
            if login and not login.startswith("#") and b":" in line:
                add("ftp_accounts", login, len(line))
        mail_etc = top + "homedir/etc/"
        for name in self.captured:
            if name.startswith(mail_etc) and name.endswith("/passwd"):
                domain = name[len(mail_etc) : -len("/passwd")]
                if "/" in domain or not _is_domain(domain):
                    continue
                for line in self._lines(name):
                    box = line.split(b":", 1)[0].strip().decode("utf-8", "replace")
                    if box and not box.startswith("#") and "/" not in box and b":" in line:
                        add("email_accounts", f"{box}@{domain}", 0, 0)

    def _texts(self, parts: dict[tuple[PartKind, str], Part], top: str, info: dict[str, str]) -> None:
        cap = self.limits.max_text_size
        captured = self.captured

        def keep(part: Part, chunks: list[tuple[bytes, bool]]) -> None:
            data = b"".join(c for c, _ in chunks)
            part.text = _text(data[:cap])
            part.text_truncated = len(data) > cap or not all(whole for _, whole in chunks)

        for (kind, item), part in list(parts.items()):
            if kind == "dns_zones":
                keep(part, [captured.get(f"{top}dnszones/{item}.db", (b"", True))])
            elif kind == "forwarders_filters":
                chunks: list[tuple[bytes, bool]] = []
                for folder in ("va", "vad", "vf"):
                    got = captured.get(f"{top}{folder}/{item}")
                    if got is not None and got[0].strip():
                        chunks.append((f"# {folder}/{item}\n".encode(), True))
                        chunks.append(
                            (got[0] if got[0].endswith(b"\n") or not got[0] else got[0] + b"\n", got[1])
                        )
                keep(part, chunks)
        cron = parts.get(("cron", ""))
        if cron is not None:
            tabs = [
                v
                for k, v in captured.items()
                if k.startswith(top + "cron/") and k.count("/") == top.count("/") + 1
            ]
            tabs = [t for t in tabs if t[0].strip() and not _NO_CRONTAB.fullmatch(t[0])]
            if tabs:
                keep(cron, tabs)
            else:
                del parts[("cron", "")]
        domains = parts.get(("domains", ""))
        if domains is not None:
            summary = _domains_summary(
                info.get("DNS", ""),
                {f: captured.get(top + f, (b"", True))[0] for f in ("sds", "sds2", "pds", "addons")},
            )
            keep(domains, [(summary.encode(), True)])


def _imply_folders(home: dict[str, HomeEntry], folder: str, mtime: int) -> None:
    missing: list[str] = []
    while folder and folder not in home:
        missing.append(folder)
        slash = folder.rfind("/")
        folder = folder[:slash] if slash != -1 else ""
    for path in reversed(missing):
        home[path] = HomeEntry(path, "dir", 0, mtime, 0o755, "", True)


def _sub_domain(entry: str) -> str:
    """``blog_example.com`` (cPanel's form) -> ``blog.example.com``."""
    return entry.replace("_", ".", 1)


def _domains_summary(main: str, files: dict[str, bytes]) -> str:
    def lines(name: str) -> list[str]:
        return [ln.strip() for ln in _text(files.get(name, b"")).splitlines() if ln.strip()]

    out: list[str] = []
    if main:
        out.append(f"main domain: {main}")
    docroots = dict(ln.partition("=")[::2] for ln in lines("sds2"))
    for sub in lines("sds"):
        root = docroots.get(sub, "")
        out.append(f"subdomain: {_sub_domain(sub)}" + (f" ({root})" if root else ""))
    for line in lines("addons"):
        addon, _, via = line.partition("=")
        out.append(f"addon domain: {addon}" + (f" (as {_sub_domain(via)})" if via else ""))
    for parked in lines("pds"):
        out.append(f"parked domain: {parked}")
    return "\n".join(out) + ("\n" if out else "")


def read_archive(
    stream: ByteStream, *, limits: Limits = DEFAULT_LIMITS, account_hint: str | None = None
) -> ArchiveIndex:
    """Index one cPanel account archive (``.tar`` or ``.tar.gz``) read once from ``stream``.

    ``stream`` needs only ``read(n)`` (short reads are fine). With ``account_hint`` (the name the
    file carries) a different account inside is flagged ``account_mismatch``. Never raises for
    bad archive content; see the module docstring.
    """
    reader = open_tar(stream, limits=limits)
    indexer = _Indexer(reader, limits)
    indexer.run()
    indexer.total_size = reader.offset
    reader.finish()
    return indexer.build(account_hint)


# ============================================================================================
# Reading members back
# ============================================================================================


def iter_members(
    stream: ByteStream,
    select: Callable[[str], bool],
    *,
    top: str,
    limits: Limits = DEFAULT_LIMITS,
    problems: list[Problem] | None = None,
) -> Iterator[tuple[Member, MemberData]]:
    """Yield (member, data) for every safe member under ``top`` that ``select(relpath)`` accepts.

    ``top`` is ``ArchiveIndex.top``. Names in the yielded members are relative to it, with the
    contents of ``homedir.tar`` presented as ``homedir/...`` (so ``classify`` and
    ``part_selector`` work on both layouts); a hard link's target is relative too. ``data`` is
    valid until the next member is asked for. Refused members are skipped and described in
    ``problems``; damage or a hard limit raises ``ArchiveError`` where it is met.
    """
    reader = open_tar(stream, limits=limits)
    state = reader.state
    nested_done = False
    cut = len(top)

    def relative(member: Member) -> Member | None:
        name = member.name
        if not name.startswith(top) or len(name) == cut:
            return None
        target = member.target
        if member.type == "hardlink":
            if not target.startswith(top):
                return None
            target = target[cut:]
        return member._replace(name=name[cut:], target=target)

    try:
        for member in reader:
            rel = relative(member)
            if rel is None:
                continue
            if rel.type == "file" and rel.name == "homedir.tar":
                if nested_done:
                    state.problem("nested_archive", member.name, "a second homedir.tar is not read")
                    continue
                nested_done = True
                nested = reader.open_nested(prefix=top + "homedir/", label=member.name)
                for inner in nested:
                    inner_rel = relative(inner)
                    if inner_rel is not None and select(inner_rel.name):
                        yield inner_rel, nested.data()
                if not nested.complete and not state.stopped:
                    state.problem("truncated", member.name, "homedir.tar ends without its end marker")
                continue
            if select(rel.name):
                yield rel, reader.data()
        reader.finish()
    finally:
        if problems is not None:
            problems.extend(state.problems)
    if state.fatal:
        fatal = sorted(state.flags & FATAL_FLAGS)
        last = state.problems[-1].reason if state.problems else ""
        raise ArchiveError(f"the archive could not be read to the end: {last}", fatal[0])
