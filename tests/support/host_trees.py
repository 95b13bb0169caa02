"""Simulated servers for account discovery: a whole cPanel or plain Linux host in a folder.

The files are written as the real servers write them (cPanel's `KEY=value` user files,
`/etc/trueuser*`, the JSON database maps, a passwd file), plus the damage discovery must
survive: malformed and hostile user files, unsafe names, a home outside /home, symlinks out
of the root, a huge file, database maps whose names collide by prefix.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

SYSTEM_PASSWD = [
    "root:x:0:0:root:/root:/bin/bash",
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
    "mysql:x:27:27:MariaDB:/var/lib/mysql:/bin/false",
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
]


@dataclass
class Host:
    root: Path
    passwd: list[str] = field(default_factory=lambda: list(SYSTEM_PASSWD))
    next_uid: int = 1000

    def write_passwd(self) -> None:
        path = self.root / "etc" / "passwd"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(self.passwd) + "\n")

    def add_user(
        self, name: str, home: str, *, login_shell: str = "/bin/bash", make_home: bool = True
    ) -> None:
        self.passwd.append(f"{name}:x:{self.next_uid}:{self.next_uid}::{home}:{login_shell}")
        self.next_uid += 1
        if make_home:
            folder = self.root / home.lstrip("/")
            (folder / "public_html").mkdir(parents=True, exist_ok=True)
            (folder / "public_html" / "index.html").write_text(f"<h1>{name}</h1>\n")

    def remove_user(self, name: str) -> None:
        self.passwd = [line for line in self.passwd if not line.startswith(f"{name}:")]


@dataclass
class CpanelHost(Host):
    owners: dict[str, str] = field(default_factory=dict)
    domains: dict[str, str] = field(default_factory=dict)

    def add_account(
        self,
        name: str,
        *,
        owner: str = "root",
        domains: list[str] | None = None,
        home_root: str = "/home",
        plan: str = "default",
        suspended: bool = False,
        databases: dict | str | None = None,
        extra: str = "",
    ) -> None:
        domains = domains if domains is not None else [f"{name}.example"]
        self.add_user(name, f"{home_root}/{name}")
        lines = [f"USER={name}", f"OWNER={owner}", f"PLAN={plan}", "RS=jupiter", "LANG=en"]
        lines += [("DNS" if i == 0 else f"DNS{i}") + f"={d}" for i, d in enumerate(domains)]
        if suspended:
            lines += ["SUSPENDED=1", "SUSPENDTIME=1700000000"]
        self.user_file(name, "\n".join(lines) + "\n" + extra)
        self.owners[name] = owner
        if domains:
            self.domains[domains[0]] = name
        if databases is not None:
            self.database_map(name, databases)

    def user_file(self, name: str, text: str | bytes) -> Path:
        path = self.root / "var" / "cpanel" / "users" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    def database_map(self, name: str, doc: dict | str) -> None:
        path = self.root / "var" / "cpanel" / "databases" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))

    def remove_account(self, name: str) -> None:
        self.remove_user(name)
        (self.root / "var" / "cpanel" / "users" / name).unlink()
        self.owners.pop(name, None)

    def write(self) -> None:
        self.write_passwd()
        etc = self.root / "etc"
        (etc / "trueuserowners").write_text("".join(f"{u}: {o}\n" for u, o in self.owners.items()))
        (etc / "trueuserdomains").write_text("".join(f"{d}: {u}\n" for d, u in self.domains.items()))


def mysql_map(dbs: list[str], users: dict[str, list[str]] | None = None) -> dict:
    """A cPanel database map (only the keys matter to its readers)."""
    return {
        "MYSQL": {
            "dbs": {name: {} for name in dbs},
            "dbusers": {user: {"dbs": {d: 1 for d in granted}} for user, granted in (users or {}).items()},
            "server": "localhost",
        },
        "PGSQL": {"dbs": {}, "dbusers": {}},
        "version": 1,
    }


def cpanel_host(root: Path, p: str) -> CpanelHost:
    """A cPanel server: 24 good accounts (prefix `p`) of three resellers and root, one of them
    suspended, on /home and /home2, with database maps that collide by prefix; and the damage."""
    host = CpanelHost(root=root)
    for index in range(18):
        owner = "root" if index < 6 else f"{p}res1" if index < 12 else f"{p}res2"
        host.add_account(f"{p}u{index:02d}", owner=owner, home_root="/home" if index % 2 else "/home2")
    host.add_account(f"{p}res1", owner="root")
    host.add_account(f"{p}res2", owner=f"{p}res2")
    host.add_account(
        f"{p}shop",
        owner=f"{p}res1",
        domains=[f"{p}shop.example", f"www2.{p}shop.example", "bad domain!", f"{p}parked.example"],
        databases=mysql_map(
            [f"{p}shop_wp", f"{p}shop_x_lost", "legacydb", "bad name;"],
            {f"{p}shop_wp": [f"{p}shop_wp"], "cpses_ab12cd": [], f"{p}shop_x_admin": []},
        ),
    )
    host.add_account(
        f"{p}shop_x",
        owner=f"{p}res1",
        databases=mysql_map([f"{p}shop_x_lost", f"{p}shop_x_blog"], {f"{p}shop_x_admin": []}),
    )
    host.add_account(f"{p}sus", owner=f"{p}res2", suspended=True, plan="bronze")
    host.add_account(f"{p}broken", databases="{not json")  # falls back to the grants
    # The damage:
    host.add_account(f"{p}outside")
    host.passwd = [
        line.replace(f"/home/{p}outside", f"/var/www/{p}outside") if line.startswith(f"{p}outside:") else line
        for line in host.passwd
    ]
    host.user_file(f"{p}liar", f"USER={p}u00\nOWNER=root\n")  # claims to be another account
    host.user_file(f"{p}garbled", b"USER=\xff\xfe\x00\nOWNER=root\n")
    host.user_file("Bad.Name", "USER=Bad.Name\n")
    host.user_file("x;rm -rf", "USER=x;rm -rf\n")
    host.user_file(f"{p}huge", f"USER={p}huge\n" + "X=" + "y" * (2 << 20) + "\n")
    host.add_user(f"{p}huge", f"/home/{p}huge")
    host.user_file(f"{p}nopasswd", f"USER={p}nopasswd\nOWNER=root\nDNS={p}nopasswd.example\n")
    (root / "outside-secret").write_text("USER=secret\n")
    os.symlink("/etc/hostname", root / "var" / "cpanel" / "users" / f"{p}linkout")
    host.add_user(f"{p}plainuser", f"/home/{p}plainuser")  # a system user, not cPanel's
    host.passwd.append("broken line without colons")
    host.passwd.append(f"{p}baduid:x:notanumber:1000::/home/{p}baduid:/bin/bash")
    host.write()
    with open(root / "etc" / "trueuserowners", "a") as handle:
        handle.write("this line has no colon\n")
    return host


def plain_host(root: Path, p: str) -> Host:
    """A Linux server without cPanel: 22 login users under /home*, and those that are not."""
    host = Host(root=root)
    for index in range(20):
        host.add_user(f"{p}h{index:02d}", f"/home/{p}h{index:02d}")
    host.add_user(f"{p}second", f"/home2/{p}second")
    host.add_user(f"{p}zsh", f"/home/{p}zsh", login_shell="/usr/bin/zsh")
    host.add_user(f"{p}svc", f"/home/{p}svc", login_shell="/usr/sbin/nologin")
    host.add_user(f"{p}ftp", f"/home/{p}ftp", login_shell="/bin/false")
    host.add_user(f"{p}app", "/srv/app", make_home=False)
    host.add_user(f"{p}dots", "/home/../etc", make_home=False)
    host.add_user("Eve", "/home/Eve")
    (root / "home" / f"{p}link").parent.mkdir(parents=True, exist_ok=True)
    os.symlink("/etc", root / "home" / f"{p}link")
    host.add_user(f"{p}link", f"/home/{p}link", make_home=False)
    host.passwd.append(f"{p}low:x:999:999::/home/{p}low:/bin/bash")
    host.passwd.append(f"{p}nob:x:65534:65534::/home/{p}nob:/bin/bash")
    host.passwd.append("five:fields:only:here:x")
    host.write_passwd()
    return host
