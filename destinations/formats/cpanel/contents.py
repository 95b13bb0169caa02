"""What an archive's metadata files say: the ``cp/<user>`` file, and the parts found in the
content of captured files (db users in ``mysql.sql``, FTP logins in ``proftpdpasswd``,
mailboxes in ``homedir/etc/<domain>/passwd``) and the texts kept for display (cron, dns
zones, forwarders and filters, domains).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from .parts import Part, PartKind, is_domain

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


def _unquote_user(match: re.Match[str]) -> str:
    quoted = match[1]
    if quoted is not None:
        return re.sub(r"\\(.)|''", lambda m: m[1] if m[1] is not None else "'", quoted)
    return match[2] or match[3] or match[4] or ""


def as_text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def content_parts(
    parts: dict[tuple[PartKind, str], Part],
    top: str,
    captured: dict[str, tuple[bytes, bool]],
    lines: Callable[[str], Iterator[bytes]],
) -> None:
    """Add to `parts` the items found in the lines of captured files (`lines(name)`)."""

    def add(kind: PartKind, item: str, size: int, members: int = 1) -> None:
        part = parts.get((kind, item))
        if part is None:
            part = parts[(kind, item)] = Part(kind, item)
        part.size += size
        part.members = max(part.members, members)

    for line in lines(top + "mysql.sql"):
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
    for line in lines(top + "proftpdpasswd"):
        login = line.split(b":", 1)[0].strip().decode("utf-8", "replace")
        if login and not login.startswith("#") and b":" in line:
            add("ftp_accounts", login, len(line))
    mail_etc = top + "homedir/etc/"
    for name in captured:
        if name.startswith(mail_etc) and name.endswith("/passwd"):
            domain = name[len(mail_etc) : -len("/passwd")]
            if "/" in domain or not is_domain(domain):
                continue
            for line in lines(name):
                box = line.split(b":", 1)[0].strip().decode("utf-8", "replace")
                if box and not box.startswith("#") and "/" not in box and b":" in line:
                    add("email_accounts", f"{box}@{domain}", 0, 0)


def keep_texts(
    parts: dict[tuple[PartKind, str], Part],
    top: str,
    info: dict[str, str],
    captured: dict[str, tuple[bytes, bool]],
    cap: int,
) -> None:
    """Give the parts shown as text (at most `cap` bytes each) their text; drop an empty cron part."""

    def keep(part: Part, chunks: list[tuple[bytes, bool]]) -> None:
        data = b"".join(c for c, _ in chunks)
        part.text = as_text(data[:cap])
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


def _sub_domain(entry: str) -> str:
    """``blog_example.com`` (cPanel's form) -> ``blog.example.com``."""
    return entry.replace("_", ".", 1)


def _domains_summary(main: str, files: dict[str, bytes]) -> str:
    def lines(name: str) -> list[str]:
        return [ln.strip() for ln in as_text(files.get(name, b"")).splitlines() if ln.strip()]

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
