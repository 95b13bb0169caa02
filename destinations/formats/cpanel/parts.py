"""The restorable parts of a cPanel account archive: their kinds, the Part record, and which
members belong to which part (``classify``, ``part_selector``).
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from destinations import names

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


HOMEDIR: tuple[PartKind, str] = ("homedir", "")
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


def is_domain(name: str) -> bool:
    return "." in name and not name.startswith(".")


def mailbox(home_rel: str) -> str | None:
    """'box@domain' for a path inside ``mail/<domain>/<box>/`` of the home folder. A folder
    whose name is not UTF-8 is no email address: it stays in the home folder part."""
    seg = home_rel.split("/", 3)
    if (
        len(seg) >= 3
        and is_domain(seg[1])
        and seg[2]
        and not seg[2].startswith(".")
        and names.is_text(seg[1])
        and names.is_text(seg[2])
    ):
        return f"{seg[2]}@{seg[1]}"
    return None


def home_parts(home_rel: str) -> list[tuple[PartKind, str]]:
    """Parts of a path relative to the home folder (always the home folder itself, maybe more)."""
    if home_rel.startswith("mail/"):
        box = mailbox(home_rel)
        if box:
            return [HOMEDIR, ("email_accounts", box)]
    elif home_rel.startswith("etc/"):
        seg = home_rel.split("/")
        if len(seg) == 3 and seg[2] in _MAIL_FILES and is_domain(seg[1]):
            return [HOMEDIR, ("email_accounts", "*@" + seg[1])]
    elif home_rel == "ssl" or home_rel.startswith("ssl/"):
        return [HOMEDIR, ("ssl", "*")]
    return [HOMEDIR]


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
        return home_parts(tail) if sep else [HOMEDIR]
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
