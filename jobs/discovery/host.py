"""Account discovery: the hosting accounts of the server the panel runs on.

Everything is read under BACKUPSITE_HOST_ROOT (`/` on a real server, a simulated server tree in
tests). A cPanel server (``/var/cpanel/users`` exists) has exactly cPanel's users as accounts:
``/var/cpanel/users/<user>`` (USER, OWNER, DNS, DNSn, PLAN, SUSPENDED), ``/etc/trueuserowners``
and ``/etc/trueuserdomains`` where the user file lacks them, the home from ``/etc/passwd``, and
databases from ``/var/cpanel/databases/<user>.json`` or, without one, from the database
server, both through the ownership rule (jobs/ownership.py). Any other server: passwd entries
with uid >= BACKUPSITE_DISCOVER_MIN_UID whose home is under ``/home*``, except nobody (uid
65534) and users whose shell refuses logins (nologin, false, ...).

None of these files is trusted. A bad line or file is reported (the queue item's log and
result) and skipped; it never stops the run, never creates an account with an unsafe name or a
home outside ``/home*``, and a symlink never leads out of the host root. Files are read up to a
bound. An account whose user file exists but cannot be read is "unsure": it is neither created
nor marked removed. If passwd itself cannot be read the run fails and changes nothing (else
every account would look removed).

`scan()` here reads the server and writes nothing; `jobs.discovery.accounts.apply()` makes the
Account table match.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError

from backupsite.errors import Error
from jobs.models import Account
from jobs.ownership import Owners
from jobs.validators import validate_home, validate_username

CPANEL_USERS = "var/cpanel/users"
CPANEL_DATABASES = "var/cpanel/databases"
PASSWD_FILE = "etc/passwd"  # noqa: S105 (a path, not a password)
TRUEUSEROWNERS = "etc/trueuserowners"
TRUEUSERDOMAINS = "etc/trueuserdomains"

# Bounds: a cPanel user file is a few KiB; passwd and the trueuser files grow with the number
# of accounts (100 bytes each: 64 MiB is 600,000 accounts).
USER_FILE_LIMIT = 1 << 20
LIST_FILE_LIMIT = 64 << 20
DATABASE_MAP_LIMIT = 16 << 20
MAX_DOMAINS = 2000
MAX_PROBLEMS = 500

NO_LOGIN_SHELLS = frozenset({"nologin", "false", "sync", "halt", "shutdown", "true"})
SYSTEM_NAMES = frozenset({"nobody", "nfsnobody", "root"})
NOBODY_UID = 65534
SERVER_DATABASES = frozenset({"mysql", "information_schema", "performance_schema", "sys"})

_HOME = re.compile(r"^/home[A-Za-z0-9_.-]*(/[^/\x00]+)+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_DB_NAME = re.compile(r"^[A-Za-z0-9_$-]{1,64}$")
_DOMAIN_KEY = re.compile(r"^DNS[0-9]*$")


class DiscoveryFailed(Error):
    """A file discovery cannot do without (passwd, the cPanel user folder) is unreadable."""


@dataclass
class Found:
    username: str
    home: str
    source: str
    reseller: str = ""
    domains: list[str] = field(default_factory=list)
    suspended: bool = False
    plan: str = ""
    databases: list[str] | None = None  # None: not known from a map; asked of the database server
    database_users: list[str] | None = None


@dataclass
class Scan:
    kind: str  # Account.Source.CPANEL or SYSTEM
    accounts: list[Found] = field(default_factory=list)
    unsure: set[str] = field(default_factory=set)  # exist on the server, but their files are bad
    problems: list[str] = field(default_factory=list)
    dropped: int = 0

    def bad(self, where: str, why: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{where}: {why}")
        else:
            self.dropped += 1


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    home: str
    shell: str


# --- reading files under the host root, without trusting them ---------------------------------


class HostFiles:
    """Reads files of the server under `root`; never follows a symlink out of it."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    def inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self.root.rstrip("/") + "/")

    def real(self, relative: str) -> str | None:
        """The real path of `relative` when it stays under the root (it may not exist)."""
        real = os.path.realpath(os.path.join(self.root, relative.lstrip("/")))
        return real if self.inside(real) else None

    def exists(self, relative: str) -> bool:
        real = self.real(relative)
        return real is not None and os.path.exists(real)

    def read(self, relative: str, limit: int, scan: Scan, *, required: bool = False) -> bytes | None:
        """The file's bytes, or None (reported) when it is missing, not a regular file, outside
        the root or larger than `limit`. `required`: raise DiscoveryFailed instead."""

        def refuse(why: str) -> None:
            if required:
                raise DiscoveryFailed(f"/{relative}: {why}")
            scan.bad(f"/{relative}", why)

        real = self.real(relative)
        if real is None:
            refuse("a symlink that leads out of the server's root; not read")
            return None
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            if required:
                refuse("missing")
            return None
        except OSError as exc:
            refuse(f"cannot be read ({exc.strerror})")
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                refuse("not a regular file; not read")
                return None
            chunks: list[bytes] = []
            size = 0
            while size <= limit:
                chunk = os.read(fd, min(1 << 20, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            if size > limit:
                refuse(f"larger than {limit} bytes; not read")
                return None
            return b"".join(chunks)
        except OSError as exc:
            refuse(f"cannot be read ({exc.strerror})")
            return None
        finally:
            os.close(fd)

    def lines(
        self, relative: str, limit: int, scan: Scan, *, required: bool = False
    ) -> list[tuple[int, str]]:
        data = self.read(relative, limit, scan, required=required)
        if data is None:
            return []
        found = []
        for number, raw in enumerate(data.split(b"\n"), 1):
            try:
                line = raw.decode("utf-8").rstrip("\r")
            except UnicodeDecodeError:
                scan.bad(f"/{relative} line {number}", "not UTF-8; skipped")
                continue
            if line.strip() and not line.lstrip().startswith("#"):
                found.append((number, line))
        return found


def _shown(value: str) -> str:
    return repr(value[:60] + ("…" if len(value) > 60 else ""))


def _safe_username(value: str) -> bool:
    try:
        validate_username(value)
    except ValidationError:
        return False
    return True


def allowed_home(files: HostFiles, home: str) -> str:
    """Why `home` is not allowed (empty when it is): it must be a plain path under /home*,
    and its real path under the host root too (a symlinked home that leads elsewhere is not)."""
    try:
        validate_home(home)
    except ValidationError:
        return "not a plain absolute path"
    if len(home) > 255 or not _HOME.match(home):
        return "outside the allowed home roots (/home*)"
    real = files.real(home)
    if real is None:
        return "a symlink that leads out of the server's root"
    shown = "/" + os.path.relpath(real, files.root) if real != files.root else "/"
    if not _HOME.match(shown):
        return f"a symlink to {shown}, outside the allowed home roots (/home*)"
    return ""


def read_passwd(files: HostFiles, scan: Scan) -> dict[str, PasswdEntry]:
    entries: dict[str, PasswdEntry] = {}
    for number, line in files.lines(PASSWD_FILE, LIST_FILE_LIMIT, scan, required=True):
        where = f"/{PASSWD_FILE} line {number}"
        parts = line.split(":")
        if len(parts) != 7:
            scan.bad(where, f"{len(parts)} fields instead of 7; skipped")
            continue
        name, _, uid, _, _, home, shell = parts
        if not uid.isdigit():
            scan.bad(where, f"uid {_shown(uid)} is not a number; skipped")
            continue
        if name in entries:
            scan.bad(where, f"{_shown(name)} appears twice; the first entry counts")
            continue
        entries[name] = PasswdEntry(name=name, uid=int(uid), home=home, shell=shell)
    return entries


def _colon_map(files: HostFiles, relative: str, scan: Scan) -> list[tuple[str, str]]:
    pairs = []
    for number, line in files.lines(relative, LIST_FILE_LIMIT, scan):
        left, sep, right = line.partition(":")
        if not sep or not left.strip() or not right.strip():
            scan.bad(f"/{relative} line {number}", f"{_shown(line)} is not 'name: value'; skipped")
            continue
        pairs.append((left.strip(), right.strip()))
    return pairs


def _domain(value: str) -> str | None:
    value = value.strip().lower().rstrip(".")
    return value if _DOMAIN.match(value) else None


# --- cPanel ------------------------------------------------------------------------------------


def _parse_user_file(data: bytes, where: str, scan: Scan) -> dict[str, list[str]] | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        scan.bad(where, "not UTF-8; account skipped")
        return None
    keys: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            scan.bad(f"{where} line {number}", f"{_shown(line)} is not KEY=value; ignored")
            continue
        keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def _database_map(files: HostFiles, username: str, scan: Scan) -> tuple[list[str], list[str]] | None:
    """Database and database user names in cPanel's map of `username` (not yet through the
    ownership rule), or None without a readable map."""
    relative = f"{CPANEL_DATABASES}/{username}.json"
    where = f"/{relative}"
    if not files.exists(relative):
        return None
    data = files.read(relative, DATABASE_MAP_LIMIT, scan)
    if data is None:
        return None
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        scan.bad(where, f"not JSON ({exc}); databases asked of the database server instead")
        return None
    if not isinstance(doc, dict):
        scan.bad(where, "not a JSON object; databases asked of the database server instead")
        return None
    databases: list[str] = []
    users: list[str] = []
    section = doc.get("MYSQL")  # PGSQL: Backupsite dumps MySQL/MariaDB only
    if section is None:
        return databases, users
    if not isinstance(section, dict):
        scan.bad(where, "MYSQL is not an object; ignored")
        return databases, users
    for key, into, kind in (("dbs", databases, "database"), ("dbusers", users, "database user")):
        names = section.get(key) or {}
        if not isinstance(names, dict):
            scan.bad(where, f"MYSQL.{key} is not an object; ignored")
            continue
        for name in names:
            if kind == "database user" and name.startswith("cpses_"):
                continue  # cPanel's temporary session users
            if not _DB_NAME.match(name):
                scan.bad(where, f"{kind} {_shown(name)} is not a valid name; ignored")
            elif name not in into:
                into.append(name)
    return databases, users


def _owned(found: Found, owners: Owners, scan: Scan) -> None:
    """Keep the map's names the ownership rule gives to this account; report the others."""
    where = f"/{CPANEL_DATABASES}/{found.username}.json"
    databases, users = [], []
    for name in found.databases or []:
        if owners.owns_database(found.username, name):
            databases.append(name)
        else:
            scan.bad(where, f"{owners.why_not_database(found.username, name)}; not given to {found.username}")
    for name in found.database_users or []:
        if owners.owns_user(found.username, name):
            users.append(name)
        else:
            scan.bad(where, f"{owners.why_not_user(found.username, name)}; not given to {found.username}")
    found.databases, found.database_users = sorted(databases), sorted(users)


def scan_cpanel(files: HostFiles, known: Iterable[str] = ()) -> Scan:
    """`known`: usernames of accounts already in the panel (the ownership rule counts them)."""
    scan = Scan(kind=Account.Source.CPANEL)
    passwd = read_passwd(files, scan)
    folder = files.real(CPANEL_USERS)
    if folder is None:
        raise DiscoveryFailed(f"/{CPANEL_USERS} leads out of the server's root")
    if not os.path.isdir(folder):
        raise DiscoveryFailed(f"/{CPANEL_USERS} is not a folder")
    try:
        names = sorted(entry.name for entry in os.scandir(folder))
    except OSError as exc:
        raise DiscoveryFailed(f"/{CPANEL_USERS} cannot be listed ({exc.strerror})") from None
    owners_file = dict(_colon_map(files, TRUEUSEROWNERS, scan))
    main_domains = {user: domain for domain, user in _colon_map(files, TRUEUSERDOMAINS, scan)}
    candidates: list[tuple[str, dict[str, list[str]]]] = []
    for name in names:
        where = f"/{CPANEL_USERS}/{name}"
        if name in SYSTEM_NAMES or name.startswith("."):
            continue
        if not _safe_username(name):
            scan.bad(where, "not a safe account name; skipped")
            continue
        data = files.read(f"{CPANEL_USERS}/{name}", USER_FILE_LIMIT, scan)
        if data is None:
            scan.unsure.add(name)
            continue
        keys = _parse_user_file(data, where, scan)
        if keys is None:
            scan.unsure.add(name)
            continue
        user = (keys.get("USER") or [""])[-1]
        if user != name:
            scan.bad(where, f"USER={_shown(user)} does not name this file's account; skipped")
            scan.unsure.add(name)
            continue
        candidates.append((name, keys))
    for name, keys in candidates:
        where = f"/{CPANEL_USERS}/{name}"
        entry = passwd.get(name)
        if entry is None:
            scan.bad(where, "no passwd entry (no home folder); skipped")
            scan.unsure.add(name)
            continue
        why = allowed_home(files, entry.home)
        if why:
            scan.bad(where, f"home {_shown(entry.home)} is {why}; skipped")
            scan.unsure.add(name)
            continue
        reseller = (keys.get("OWNER") or [owners_file.get(name, "")])[-1]
        if reseller and reseller != "root" and not _safe_username(reseller):
            scan.bad(where, f"OWNER={_shown(reseller)} is not a safe name; reseller left empty")
            reseller = ""
        domains: list[str] = []
        domain_keys = sorted(
            (key for key in keys if _DOMAIN_KEY.match(key)), key=lambda k: (k != "DNS", len(k), k)
        )
        raw_domains = [value for key in domain_keys for value in keys[key]]
        if not raw_domains and name in main_domains:
            raw_domains = [main_domains[name]]
        for raw in raw_domains:
            domain = _domain(raw)
            if domain is None:
                scan.bad(where, f"domain {_shown(raw)} is not a domain name; ignored")
            elif domain not in domains and len(domains) < MAX_DOMAINS:
                domains.append(domain)
        plan = (keys.get("PLAN") or [""])[-1][:100]
        suspended = (keys.get("SUSPENDED") or ["0"])[-1] == "1"
        found = Found(
            username=name,
            home=entry.home,
            source=Account.Source.CPANEL,
            reseller=reseller,
            domains=domains,
            suspended=suspended,
            plan=plan,
        )
        mapped = _database_map(files, name, scan)
        if mapped is not None:
            found.databases, found.database_users = mapped
        scan.accounts.append(found)
    # The maps list databases (prefixing may be off); a name that starts with another
    # account's prefix is still that account's (longest prefix wins).
    owners = Owners.of(
        {f.username for f in scan.accounts} | set(known),
        {f.username: f.databases for f in scan.accounts if f.databases},
    )
    for found in scan.accounts:
        if found.databases is not None:
            _owned(found, owners, scan)
    return scan


# --- any other Linux server --------------------------------------------------------------------


def scan_system(files: HostFiles, min_uid: int) -> Scan:
    scan = Scan(kind=Account.Source.SYSTEM)
    for entry in read_passwd(files, scan).values():
        if entry.uid < min_uid or entry.uid == NOBODY_UID or entry.name in SYSTEM_NAMES:
            continue
        if os.path.basename(entry.shell) in NO_LOGIN_SHELLS:
            continue
        where = f"/{PASSWD_FILE} {_shown(entry.name)}"
        if not _safe_username(entry.name):
            scan.bad(where, "not a safe account name; skipped")
            continue
        why = allowed_home(files, entry.home)
        if why:
            if entry.home.startswith("/home"):
                scan.bad(where, f"home {_shown(entry.home)} is {why}; skipped")
            continue  # a service user with its home elsewhere is not a hosting account
        scan.accounts.append(Found(username=entry.name, home=entry.home, source=Account.Source.SYSTEM))
    return scan


def scan(root: str | None = None, *, known: Iterable[str] = ()) -> Scan:
    """What the server under `root` (default BACKUPSITE_HOST_ROOT) says its accounts are."""
    files = HostFiles(root or settings.HOST_ROOT)
    if os.path.lexists(os.path.join(files.root, CPANEL_USERS)):
        # A cPanel server; a cPanel folder that cannot be read must not turn it into a plain
        # server (whose accounts would differ).
        return scan_cpanel(files, known)
    return scan_system(files, settings.DISCOVER_MIN_UID)
