"""Deterministic generator of cPanel account archives and destination trees, for tests and benchmarks.

What it writes follows /work/shared/reference/cpanel-backup-format.md. Every archive comes with
a manifest of what was written (home listing, part sizes, texts, secrets) computed here while
writing, so tests can compare the indexer against it without calling the code under test.

    python -m tests.support.cpanel_archives OUT_DIR --accounts 3 --layout all --seed 0 --size-scale 1
"""

from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

BASE_TIME = 1_720_051_200  # 2024-07-04 00:00 UTC
ENCODING = "utf-8"
ERRORS = "surrogateescape"
Key = tuple[str, str]
Table = tuple[str, str, Sequence[tuple[object, ...]]]  # name, column definitions, rows

_WORD_TEXT = (
    "the of and to in is for on that with as it was by at be this from or are an not have but "
    "backup server domain account mail database restore website hosting panel file folder user "
    "password email message order product price customer invoice shipping stock review post "
    "comment page theme plugin update security cache image gallery blog news contact support "
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco"
)
WORDS = tuple(_WORD_TEXT.split())

ODD_STRINGS = [
    "O'Reilly & Sons",
    'say "hello"',
    "back\\slash \\n not a newline",
    "tab\there",
    "line one\nline two\r\nline three",
    "NUL\0inside",
    "ctrl-Z \x1a end",
    "emoji \U0001f680 and \u00e9\u00e8\u00ea",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "Robert'); DROP TABLE Students;--",
    "100% _wild_ cards",
    "/* not a comment */ -- nor this; semi;colons;",
    "",
    " leading and trailing spaces ",
]


# -- content helpers ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _corpus(seed: int) -> bytes:
    rng = random.Random(seed * 7919 + 1)
    words: list[str] = []
    size = 0
    while size < 1 << 20:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16)))
        line = line.capitalize() + ".\n"
        words.append(line)
        size += len(line)
    return "".join(words).encode()


def text_blob(rng: random.Random, seed: int, size: int) -> bytes:
    corpus = _corpus(seed)
    out = bytearray()
    while len(out) < size:
        start = rng.randrange(0, len(corpus) - 1)
        out += corpus[start : start + (size - len(out))]
    return bytes(out)


def random_blob(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


def _hash(rng: random.Random, kind: str = "sha512") -> str:
    salt = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEF0123456789./") for _ in range(16))
    body = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEF0123456789./") for _ in range(86))
    return f"$6${salt}${body}" if kind == "sha512" else body


def _mysql_hash(rng: random.Random) -> str:
    return "*" + hashlib.sha1(rng.randbytes(20)).hexdigest().upper() + "0" * 0


@functools.lru_cache(maxsize=32)
def tls_material(seed: int, domain: str) -> tuple[str, str, str]:
    """(private key, certificate, CA certificate) PEM for a domain; cached: RSA keys are slow."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    def make(cn: str, issuer_key: Any = None, issuer: str | None = None) -> tuple[Any, str]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        issuer_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer or cn)])
        start = datetime(2024, 1, 1, tzinfo=UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(int.from_bytes(hashlib.sha256(f"{seed}:{cn}".encode()).digest()[:8], "big"))
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .sign(issuer_key or key, hashes.SHA256())
        )
        return key, cert.public_bytes(serialization.Encoding.PEM).decode()

    ca_key, ca_pem = make(f"Test CA {seed}")
    key, cert_pem = make(domain, ca_key, f"Test CA {seed}")
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return key_pem, cert_pem, ca_pem


def sql_quote(value: object) -> str:
    """A value as mysqldump writes it."""
    if value is None:
        return "NULL"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    for raw, esc in (
        ("\\", "\\\\"),
        ("'", "\\'"),
        ('"', '\\"'),
        ("\0", "\\0"),
        ("\n", "\\n"),
        ("\r", "\\r"),
        ("\x1a", "\\Z"),
    ):
        text = text.replace(raw, esc)
    return f"'{text}'"


# -- the manifest ------------------------------------------------------------------------------


@dataclass
class GeneratedArchive:
    """What an archive holds, as written (sizes follow the indexer's documented rule)."""

    path: Path
    user: str  # the account in cp/<user>
    name_user: str  # the account the file and top folder are named for
    top: str
    style: str
    compressed: bool
    homedir_tar: bool
    domains: dict[str, Any] = field(default_factory=dict)
    home: dict[str, tuple[str, int, str]] = field(default_factory=dict)  # path -> (type, size, target)
    home_modes: dict[str, int] = field(default_factory=dict)
    parts: dict[Key, int] = field(default_factory=dict)
    texts: dict[Key, list[str]] = field(default_factory=dict)  # pieces the part's text must contain
    account_info: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)  # relative to top (home.tar members as homedir/...)
    db_rows: dict[str, dict[str, int]] = field(default_factory=dict)
    db_odd_values: dict[str, list[str]] = field(default_factory=dict)  # db -> odd strings stored in it
    uncompressed_size: int = 0

    def add_part(self, kind: str, name: str, size: int) -> None:
        self.parts[(kind, name)] = self.parts.get((kind, name), 0) + size


class _Writer:
    """Writes members into the outer tar (and the inner homedir.tar) and records the manifest."""

    def __init__(
        self, manifest: GeneratedArchive, outer: tarfile.TarFile, inner: tarfile.TarFile | None
    ) -> None:
        self.m = manifest
        self.outer = outer
        self.inner = inner
        self.top = manifest.top
        self.extra_home: Sequence[tuple[bytes, bytes | None]] = ()

    def _info(self, name: str, kind: bytes, mtime: int, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mtime = mtime
        info.mode = mode
        info.uid = info.gid = 1001
        info.uname = info.gname = self.m.name_user
        return info

    def _target(self, rel: str) -> tuple[tarfile.TarFile, str]:
        if self.inner is not None and (rel == "homedir" or rel.startswith("homedir/")):
            return self.inner, "./" + rel[len("homedir/") :]
        return self.outer, self.top + rel

    def _home(self, rel: str) -> str | None:
        return rel[len("homedir/") :] if rel.startswith("homedir/") else None

    def dir(self, rel: str, *, mtime: int = BASE_TIME, mode: int = 0o755) -> None:
        tar, name = self._target(rel)
        tar.addfile(self._info(name.rstrip("/") + "/", tarfile.DIRTYPE, mtime, mode))
        self.m.members.append(rel)
        home = self._home(rel)
        if home is not None:
            self.m.home[home] = ("dir", 0, "")
            self.m.home_modes[home] = mode
            self.m.add_part("homedir", "", 0)

    def file(
        self, rel: str, data: bytes, *, mtime: int = BASE_TIME, mode: int = 0o644, part: Key | None = None
    ) -> None:
        tar, name = self._target(rel)
        info = self._info(name, tarfile.REGTYPE, mtime, mode)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        self.m.members.append(rel)
        home = self._home(rel)
        if home is not None:
            self.m.home[home] = ("file", len(data), "")
            self.m.home_modes[home] = mode
            self.m.add_part("homedir", "", len(data))
        if part is not None:
            self.m.add_part(part[0], part[1], len(data))

    def text(self, rel: str, text: str, **kwargs: Any) -> bytes:
        data = text.encode(ENCODING, ERRORS)
        self.file(rel, data, **kwargs)
        return data

    def symlink(self, rel: str, target: str, *, mtime: int = BASE_TIME) -> None:
        tar, name = self._target(rel)
        info = self._info(name, tarfile.SYMTYPE, mtime, 0o777)
        info.linkname = target
        tar.addfile(info)
        self.m.members.append(rel)
        home = self._home(rel)
        if home is not None:
            self.m.home[home] = ("symlink", 0, target)
            self.m.home_modes[home] = 0o777

    def hardlink(self, rel: str, target_rel: str, *, mtime: int = BASE_TIME) -> None:
        tar, name = self._target(rel)
        _, target_name = self._target(target_rel)
        info = self._info(name, tarfile.LNKTYPE, mtime, 0o644)
        info.linkname = target_name
        tar.addfile(info)
        self.m.members.append(rel)
        home = self._home(rel)
        if home is not None:
            self.m.home[home] = ("hardlink", 0, self._home(target_rel) or "")
            self.m.home_modes[home] = 0o644


# -- account content ---------------------------------------------------------------------------


def _domains(user: str) -> dict[str, Any]:
    main = f"{user}site.com"
    return {
        "main": main,
        "addon": f"shop-{user}.org",
        "addon_sub": f"shop-{user}.{main}",
        "parked": f"{user}site.net",
        "sub": f"blog.{main}",
        "mail": [main, f"shop-{user}.org"],
    }


def _zone(domain: str, ip: str, serial: int) -> str:
    return (
        f"; cPanel first:11.110.0.15 (update_time):{BASE_TIME} Cpanel::ZoneFile::VERSION:1.3 "
        "hostname:server.example.net latest:11.110.0.15\n"
        f"; Zone file for {domain}\n$TTL 14400\n"
        f"{domain}.\t86400\tIN\tSOA\tns1.example.net.\thostmaster.example.net.\t(\n"
        f"\t\t{serial} ;Serial Number\n\t\t3600 ;refresh\n\t\t1800 ;retry\n"
        "\t\t1209600 ;expire\n\t\t86400 ;minimum\n\t)\n"
        f"{domain}.\t86400\tIN\tNS\tns1.example.net.\n{domain}.\t86400\tIN\tNS\tns2.example.net.\n"
        f"{domain}.\t14400\tIN\tA\t{ip}\n"
        f"{domain}.\t14400\tIN\tMX\t0\t{domain}.\n"
        f"mail\t14400\tIN\tCNAME\t{domain}.\nwww\t14400\tIN\tCNAME\t{domain}.\n"
        f"ftp\t14400\tIN\tA\t{ip}\n"
        f'{domain}.\t14400\tIN\tTXT\t"v=spf1 +a +mx +ip4:{ip} ~all"\n'
        f'default._domainkey\t14400\tIN\tTXT\t"v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCg"\n'
    )


def _yaml_map(values: dict[str, Any], indent: str = "") -> str:
    out = []
    for key, value in values.items():
        if isinstance(value, dict):
            out.append(f"{indent}{key}:" + (" {}" if not value else ""))
            if value:
                out.append(_yaml_map(value, indent + "  ").rstrip("\n"))
        elif isinstance(value, list):
            out.append(f"{indent}{key}:" + (" []" if not value else ""))
            out.extend(f"{indent}  - {item}" for item in value)
        else:
            out.append(f"{indent}{key}: {value}")
    return "\n".join(out) + "\n"


def _mysqldump(db: str, tables: list[Table]) -> str:
    out = [
        "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n--\n",
        f"-- Host: localhost    Database: {db}\n",
        "-- ------------------------------------------------------\n",
        "-- Server version\t10.11.6-MariaDB-0+deb12u1\n\n",
        "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n",
        "/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;\n",
        "/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;\n",
        "/*!40101 SET NAMES utf8mb4 */;\n",
        "/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;\n/*!40103 SET TIME_ZONE='+00:00' */;\n",
        "/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;\n",
        "/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n",
        "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n",
        "/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;\n",
    ]
    for table, create, rows in tables:
        out.append(f"\n--\n-- Table structure for table `{table}`\n--\n\n")
        out.append(f"DROP TABLE IF EXISTS `{table}`;\n")
        out.append("/*!40101 SET @saved_cs_client     = @@character_set_client */;\n")
        out.append("/*!40101 SET character_set_client = utf8 */;\n")
        out.append(
            f"CREATE TABLE `{table}` (\n{create}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
            " COLLATE=utf8mb4_unicode_ci;\n"
        )
        out.append("/*!40101 SET character_set_client = @saved_cs_client */;\n")
        out.append(f"\n--\n-- Dumping data for table `{table}`\n--\n\n")
        out.append(f"LOCK TABLES `{table}` WRITE;\n/*!40000 ALTER TABLE `{table}` DISABLE KEYS */;\n")
        for start in range(0, len(rows), 50):  # extended inserts, several statements per table
            values = ",".join(
                "(" + ",".join(sql_quote(v) for v in row) + ")" for row in rows[start : start + 50]
            )
            out.append(f"INSERT INTO `{table}` VALUES {values};\n")
        out.append(f"/*!40000 ALTER TABLE `{table}` ENABLE KEYS */;\nUNLOCK TABLES;\n")
    out.append(
        "/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n\n/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n"
        "/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;\n"
        "/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;\n"
        "/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n"
        "/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */;\n"
        "/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;\n"
        "/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;\n\n"
        "-- Dump completed on 2024-07-04  2:00:01\n"
    )
    return "".join(out)


def _date(rng: random.Random) -> str:
    moment = datetime.fromtimestamp(BASE_TIME - rng.randrange(0, 86400 * 700), UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _databases(user: str, rng: random.Random, seed: int) -> dict[str, tuple[list[Table], list[str]]]:
    odd = ODD_STRINGS
    options = [
        (
            i + 1,
            f"option_{i}",
            odd[i % len(odd)] if i % 3 == 0 else text_blob(rng, seed, 40).decode(),
            "yes" if i % 2 else "no",
        )
        for i in range(80)
    ]
    options[0] = (1, "siteurl", f"https://{user}site.com", "yes")
    posts = [
        (
            i + 1,
            1,
            _date(rng),
            text_blob(rng, seed, rng.randint(200, 1500)).decode() + (odd[i % len(odd)] if i % 4 == 0 else ""),
            f"Post {i} {odd[(i + 3) % len(odd)]}",
            "publish" if i % 5 else "draft",
            f"post-{i}",
        )
        for i in range(120)
    ]
    users = [
        (i + 1, f"user{i}", _hash(rng), f"user{i}@example.org", _date(rng), odd[i % len(odd)])
        for i in range(30)
    ]
    products = [
        (
            i + 1,
            f"SKU-{i:05d}",
            f"Product {i} {odd[i % len(odd)]}",
            round(rng.uniform(1, 500), 2),
            rng.randint(0, 900),
            _date(rng),
        )
        for i in range(100)
    ]
    orders = [
        (
            i + 1,
            rng.randint(1, 100),
            round(rng.uniform(5, 900), 2),
            _date(rng),
            None if i % 7 == 0 else f"note {odd[i % len(odd)]}",
        )
        for i in range(60)
    ]

    def cols(*lines: str) -> str:
        return ",\n".join("  " + line for line in lines)

    wp: list[Table] = [
        (
            "wp_options",
            cols(
                "`option_id` bigint(20) unsigned NOT NULL AUTO_INCREMENT",
                "`option_name` varchar(191) NOT NULL DEFAULT ''",
                "`option_value` longtext NOT NULL",
                "`autoload` varchar(20) NOT NULL DEFAULT 'yes'",
                "PRIMARY KEY (`option_id`)",
                "UNIQUE KEY `option_name` (`option_name`)",
            ),
            options,
        ),
        (
            "wp_posts",
            cols(
                "`ID` bigint(20) unsigned NOT NULL AUTO_INCREMENT",
                "`post_author` bigint(20) unsigned NOT NULL DEFAULT 0",
                "`post_date` datetime NOT NULL DEFAULT '0000-00-00 00:00:00'",
                "`post_content` longtext NOT NULL",
                "`post_title` text NOT NULL",
                "`post_status` varchar(20) NOT NULL DEFAULT 'publish'",
                "`post_name` varchar(200) NOT NULL DEFAULT ''",
                "PRIMARY KEY (`ID`)",
                "KEY `post_name` (`post_name`(191))",
            ),
            posts,
        ),
        (
            "wp_users",
            cols(
                "`ID` bigint(20) unsigned NOT NULL AUTO_INCREMENT",
                "`user_login` varchar(60) NOT NULL DEFAULT ''",
                "`user_pass` varchar(255) NOT NULL DEFAULT ''",
                "`user_email` varchar(100) NOT NULL DEFAULT ''",
                "`user_registered` datetime NOT NULL DEFAULT '0000-00-00 00:00:00'",
                "`display_name` varchar(250) NOT NULL DEFAULT ''",
                "PRIMARY KEY (`ID`)",
            ),
            users,
        ),
    ]
    shop: list[Table] = [
        (
            "products",
            cols(
                "`id` int(11) NOT NULL AUTO_INCREMENT",
                "`sku` varchar(32) NOT NULL",
                "`name` varchar(255) NOT NULL",
                "`price` decimal(10,2) NOT NULL",
                "`stock` int(11) NOT NULL DEFAULT 0",
                "`created` datetime NOT NULL",
                "PRIMARY KEY (`id`)",
                "UNIQUE KEY `sku` (`sku`)",
            ),
            products,
        ),
        (
            "orders",
            cols(
                "`id` int(11) NOT NULL AUTO_INCREMENT",
                "`product_id` int(11) NOT NULL",
                "`total` decimal(10,2) NOT NULL",
                "`placed` datetime NOT NULL",
                "`note` text DEFAULT NULL",
                "PRIMARY KEY (`id`)",
            ),
            orders,
        ),
    ]
    return {f"{user}_wp": (wp, odd), f"{user}_shop": (shop, odd), f"{user}_empty": ([], [])}


def _message(rng: random.Random, seed: int, to: str, n: int, attach: bool) -> bytes:
    body = text_blob(rng, seed, rng.randint(800, 6000)).decode()
    head = (
        f"Return-Path: <sender{n}@example.org>\nDelivered-To: {to}\n"
        f"Received: from mail.example.org ([198.51.100.{n % 250}])\n\tby server.example.net with esmtps\n"
        f"Date: {datetime.fromtimestamp(BASE_TIME - n * 3600, UTC):%a, %d %b %Y %H:%M:%S +0000}\n"
        f'From: "Sender {n}" <sender{n}@example.org>\nTo: {to}\n'
        f"Subject: Message {n} about {rng.choice(WORDS)}\n"
        f"Message-ID: <{n}.{seed}@example.org>\nMIME-Version: 1.0\n"
    )
    if not attach:
        return (head + "Content-Type: text/plain; charset=utf-8\n\n" + body).encode()
    import base64

    blob = base64.encodebytes(random_blob(rng, rng.randint(5000, 60000))).decode()
    return (
        head
        + 'Content-Type: multipart/mixed; boundary="b1"\n\n--b1\nContent-Type: text/plain; charset=utf-8\n\n'
        + body
        + '\n--b1\nContent-Type: application/pdf; name="doc.pdf"\nContent-Transfer-Encoding: base64\n\n'
        + blob
        + "--b1--\n"
    ).encode()


def _write_account(
    w: _Writer,
    user: str,
    rng: random.Random,
    seed: int,
    scale: float,
    *,
    home: Callable[[], None],
    legacy_ssl: bool,
) -> None:
    m = w.m
    d = m.domains
    main, addon, parked, sub = d["main"], d["addon"], d["parked"], d["sub"]
    ip = f"192.0.2.{10 + seed % 200}"
    uid = 1001

    w.dir("")
    w.text("version", "pkgacct version: 10\narchive version: 4\n")
    w.text("homedir_paths", f"/home/{user}\n")

    # -- the home folder (early in the archive, before cp/: the top is not known yet)
    home()

    # -- account settings
    w.dir("cp")
    info = {
        "BWLIMIT": "unlimited",
        "CONTACTEMAIL": f"owner@{main}",
        "DNS": main,
        "DNS1": addon,
        "DNS2": parked,
        "FEATURELIST": "default",
        "HASCGI": "1",
        "IP": ip,
        "LANG": "en",
        "MAXADDON": "unlimited",
        "MAXFTP": "unlimited",
        "MAXPOP": "unlimited",
        "MAXSQL": "unlimited",
        "MXCHECK-" + main: "0",
        "OWNER": "root",
        "PLAN": "default",
        "RS": "jupiter",
        "STARTDATE": str(BASE_TIME - 86400 * 400),
        "SUSPENDED": "0",
        "USER": user,
        "UTF8MAILBOX": "1",
    }
    m.account_info = dict(info)
    cp_text = "# cPanel -- If you edit this file directly you must run /scripts/updateuserdatacache\n"
    cp_text += "# Do not edit\n"
    cp_text += "".join(f"{k}={v}\n" for k, v in info.items())
    w.text(f"cp/{user}", cp_text, part=("account_settings", ""))
    shadow = _hash(rng)
    m.secrets.append(shadow)
    w.text("shadow", shadow, part=("account_settings", ""), mode=0o600)
    w.text("shell", "/bin/bash", part=("account_settings", ""))
    w.text("quota", "0\n", part=("account_settings", ""))

    # -- FTP accounts
    ftp_lines = [
        (user, f"{user}:{_hash(rng)}:{uid}:{uid}::/home/{user}:/bin/ftpsh\n"),
        (
            f"ftpuser@{main}",
            f"ftpuser@{main}:{_hash(rng)}:{uid}:{uid}:{user}:/home/{user}/public_html/ftpuser:/bin/ftpsh\n",
        ),
        (
            f"deploy@{addon}",
            f"deploy@{addon}:{_hash(rng)}:{uid}:{uid}:{user}:/home/{user}/{addon}:/bin/ftpsh\n",
        ),
        (
            f"{user}_logs",
            f"{user}_logs:{_hash(rng)}:{uid}:{uid}:{user}:/usr/local/apache/domlogs/{user}:/bin/ftpsh\n",
        ),
    ]
    for login, line in ftp_lines:
        m.add_part("ftp_accounts", login, len(line.encode()))
        m.secrets.append(line.split(":")[1])
    w.text("proftpdpasswd", "".join(line for _, line in ftp_lines), mode=0o600)

    # -- domains
    sub_entry = f"blog_{main}"
    addon_sub = f"shop-{user}_{main}"
    w.text("sds", f"{sub_entry}\n{addon_sub}\n", part=("domains", ""))
    w.text("sds2", f"{sub_entry}=public_html/blog\n{addon_sub}={addon}\n", part=("domains", ""))
    w.text("pds", f"{parked}\n", part=("domains", ""))
    w.text("addons", f"{addon}={addon_sub}\n", part=("domains", ""))
    m.texts[("domains", "")] = [main, "blog." + main, addon, parked]
    w.dir("userdata")
    userdata_main = {
        "addon_domains": {addon: f"shop-{user}.{main}"},
        "cp_php_magic_include_path.conf": 0,
        "main_domain": main,
        "parked_domains": [parked],
        "sub_domains": [sub, f"shop-{user}.{main}"],
    }
    w.text("userdata/main", "---\n" + _yaml_map(userdata_main), part=("domains", ""))
    for domain, root in ((main, "public_html"), (sub, "public_html/blog"), (f"shop-{user}.{main}", addon)):
        data = {
            "customlog": [{"format": "combined", "target": f"/etc/apache2/logs/domlogs/{domain}"}],
            "documentroot": f"/home/{user}/{root}",
            "group": user,
            "hascgi": 1,
            "homedir": f"/home/{user}",
            "ip": ip,
            "owner": "root",
            "phpversion": "ea-php82",
            "serveradmin": f"webmaster@{domain}",
            "serveralias": f"www.{domain}" + (f" {parked} www.{parked}" if domain == main else ""),
            "servername": domain,
            "usecanonicalname": "Off",
            "user": user,
        }
        w.text(f"userdata/{domain}", "---\n" + _yaml_map(data), part=("domains", ""))
    ssl_data = {
        "documentroot": f"/home/{user}/public_html",
        "servername": main,
        "sslcertificatefile": f"/var/cpanel/ssl/apache_tls/{main}/combined",
    }
    w.text(f"userdata/{main}_SSL", "---\n" + _yaml_map(ssl_data), part=("domains", ""))

    # -- DNS zones
    w.dir("dnszones")
    for n, zone in enumerate((main, addon, parked)):
        text = _zone(zone, ip, 2024070401 + n)
        w.text(f"dnszones/{zone}.db", text, part=("dns_zones", zone))
        m.texts[("dns_zones", zone)] = [text]

    # -- forwarders and filters
    for folder in ("va", "vad", "vf"):
        w.dir(folder)
    fw = {
        main: (
            f"info@{main}: {user}@example.org\n"
            f'sales@{main}: info@{main},"|/home/{user}/bin/pipe.php"\n'
            "*: :fail: No Such User Here\n",
            "",
            f'# Exim filter\nif\n $header_subject: contains "[SPAM]"\nthen\n'
            f' save "/home/{user}/mail/{main}/info/.Junk/" 660\nendif\n',
        ),
        addon: (f"orders@{addon}: sales@{main}\n*: admin@{addon}\n", f"{addon}: {main}\n", ""),
        parked: ("*: :fail: No Such User Here\n", "", ""),
    }
    for domain, (va, vad, vf) in fw.items():
        pieces = []
        for folder, content in (("va", va), ("vad", vad), ("vf", vf)):
            w.text(f"{folder}/{domain}", content, part=("forwarders_filters", domain))
            if content:
                pieces.append(content)
        m.texts[("forwarders_filters", domain)] = pieces

    # -- cron
    w.dir("cron")
    cron = (
        'MAILTO=""\nSHELL="/bin/bash"\n'
        f"*/15 * * * * /usr/local/bin/php /home/{user}/public_html/wp-cron.php >/dev/null 2>&1\n"
        f"30 3 * * 0 /home/{user}/bin/weekly-report.sh --to 'owner@{main}' # odd: %% and \"quotes\"\n"
    )
    w.text(f"cron/{user}", cron, part=("cron", ""))
    m.texts[("cron", "")] = [cron]

    # -- databases and users
    dbs = _databases(user, rng, seed)
    grants = ["-- cPanel mysql backup\n"]
    auth: dict[str, Any] = {}
    db_users = {
        user: ["localhost"],
        f"{user}_wp": ["localhost", "127.0.0.1"],
        f"{user}_shop": ["localhost"],
        f"{user}_ro": ["%"],
    }
    rights = {
        user: list(dbs),
        f"{user}_wp": [f"{user}_wp"],
        f"{user}_shop": [f"{user}_shop"],
        f"{user}_ro": [f"{user}_shop"],
    }
    for db_user, hosts in db_users.items():
        secret = _mysql_hash(rng)
        m.secrets.append(secret)
        auth[db_user] = {host: {"pass": secret, "plugin": "mysql_native_password"} for host in hosts}
        for host in hosts:
            lines = [f"GRANT USAGE ON *.* TO '{db_user}'@'{host}' IDENTIFIED BY PASSWORD '{secret}';\n"]
            for db in rights[db_user]:
                priv = "SELECT" if db_user.endswith("_ro") else "ALL PRIVILEGES"
                lines.append(
                    f"GRANT {priv} ON `{db.replace('_', chr(92) + '_')}`.* TO '{db_user}'@'{host}';\n"
                )
            for line in lines:
                grants.append(line)
                m.add_part("db_users", db_user, len(line.encode()))
    w.text("mysql.sql", "".join(grants), mode=0o600)
    w.text("mysql.sql-auth.json", json.dumps(auth, sort_keys=True), mode=0o600)
    w.dir("mysql")
    w.dir("mysql-timestamps")
    for db, (tables, odd) in dbs.items():
        w.text(
            f"mysql/{db}.create",
            f"CREATE DATABASE `{db}` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci */;\n",
            part=("databases", db),
        )
        w.text(f"mysql/{db}.sql", _mysqldump(db, tables), part=("databases", db))
        w.text(f"mysql-timestamps/{db}", str(BASE_TIME - 3600), part=("databases", db))
        m.db_rows[db] = {table: len(rows) for table, _, rows in tables}
        m.db_odd_values[db] = [s for s in odd if s]
    w.dir("psql")

    # -- SSL
    tls_domains = (main, addon)
    if legacy_ssl:
        w.dir("sslcerts")
        w.dir("sslkeys")
    else:
        w.dir("apache_tls")
    for domain in tls_domains:
        key, cert, ca = tls_material(seed, domain)
        m.secrets.append(key.splitlines()[1])
        if legacy_ssl:
            w.text(f"sslcerts/{domain}.crt", cert, part=("ssl", domain))
            w.text(f"sslkeys/{domain}.key", key, part=("ssl", domain), mode=0o600)
        else:
            w.text(f"apache_tls/{domain}", key + cert + ca, part=("ssl", domain), mode=0o600)
    w.dir("domainkeys")
    w.dir("domainkeys/public")
    w.dir("domainkeys/private")
    dkim_key, _, _ = tls_material(seed, main)
    w.text(f"domainkeys/private/{main}", dkim_key, mode=0o600)
    w.text(
        f"domainkeys/public/{main}",
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCg\n-----END PUBLIC KEY-----\n",
    )

    # -- other folders cPanel writes, often empty
    for folder in (
        "logs",
        "bandwidth",
        "meta",
        "suspended",
        "locale",
        "mm",
        "counters",
        "resellerconfig",
        "ips",
        "ssldomain",
    ):
        w.dir(folder)
    w.file(f"logs/{main}-Jul-2024.gz", gzip.compress(text_blob(rng, seed, 3000), mtime=0))
    w.text("meta/homedir_paths", f"/home/{user}\n")


def _write_home(w: _Writer, user: str, rng: random.Random, seed: int, scale: float) -> None:
    m = w.m
    d = m.domains
    main, addon = d["main"], d["addon"]
    t = BASE_TIME - 86400
    w.dir("homedir", mode=0o711)
    w.text("homedir/.bashrc", "# .bashrc\nif [ -f /etc/bashrc ]; then . /etc/bashrc; fi\n")
    w.text("homedir/.bash_profile", "# .bash_profile\nPATH=$PATH:$HOME/bin\nexport PATH\n")
    w.text("homedir/.contactemail", f"owner@{main}\n")
    w.file("homedir/.hushlogin", b"")
    w.dir("homedir/.cpanel")
    w.text("homedir/.cpanel/nvdata.yaml", "---\nxmainwindow: 1\n")
    w.dir("homedir/.htpasswds", mode=0o750)
    w.dir("homedir/.trash", mode=0o700)  # empty folder
    w.dir("homedir/tmp")  # empty folder
    w.symlink("homedir/access-logs", f"/usr/local/apache/domlogs/{user}")
    w.symlink("homedir/www", "public_html")

    # web sites
    w.dir("homedir/public_html", mode=0o750)
    index = f"<?php\n/* {main} front page */\ndefine('WP_USE_THEMES', true);\n"
    index += "require __DIR__ . '/wp-blog-header.php';\n"
    w.text("homedir/public_html/index.php", index, mtime=t)
    w.hardlink("homedir/public_html/index-copy.php", "homedir/public_html/index.php")
    w.text(
        "homedir/public_html/.htaccess",
        "# BEGIN WordPress\nRewriteEngine On\nRewriteRule ^index\\.php$ - [L]\n# END WordPress\n",
    )
    w.text(
        "homedir/public_html/wp-config.php",
        f"<?php\ndefine('DB_NAME', '{user}_wp');\ndefine('DB_USER', '{user}_wp');\n",
    )
    w.dir("homedir/public_html/cgi-bin")  # empty folder
    w.dir("homedir/public_html/blog")
    w.dir("homedir/public_html/css")
    w.dir("homedir/public_html/js")
    w.dir("homedir/public_html/wp-content")
    w.dir("homedir/public_html/wp-content/uploads")
    w.dir(f"homedir/{addon}")
    w.text(f"homedir/{addon}/index.html", "<html><body>shop</body></html>\n")
    n_pages = max(1, round(10 * scale))
    n_images = max(1, round(6 * scale))
    for i in range(n_pages):
        folder = ("blog", "css", "js")[i % 3]
        ext = ("html", "css", "js")[i % 3]
        w.file(
            f"homedir/public_html/{folder}/page-{i:05d}.{ext}",
            text_blob(rng, seed, rng.randint(2000, 40000)),
            mtime=t + i,
        )
    months: set[str] = set()
    for i in range(n_images):
        month = f"homedir/public_html/wp-content/uploads/2024/{1 + i % 12:02d}"
        if month not in months:
            if not months:
                w.dir("homedir/public_html/wp-content/uploads/2024")
            months.add(month)
            w.dir(month)
        w.file(f"{month}/image-{i:05d}.jpg", random_blob(rng, rng.randint(10000, 120000)), mtime=t + i)
    if scale >= 20:
        w.dir("homedir/backups")
        for i in range(max(1, round(scale / 40))):
            w.file(f"homedir/backups/site-{i:03d}.zip", random_blob(rng, rng.randint(2, 12) << 20))
    # files of a few sizes around the 512-byte block
    w.dir("homedir/sizes")
    for size in (1, 511, 512, 513, 1 << 20 | 1):
        w.file(f"homedir/sizes/bytes-{size}", random_blob(rng, size))

    # odd names
    w.dir("homedir/odd")
    for name in (
        "with space.txt",
        "new\nline.txt",
        "latin1-\udce9t\udce9.txt",  # bytes b"latin1-\xe9t\xe9.txt": not UTF-8
        "unicod\u00e9-\u65e5\u672c\u8a9e.txt",
        "-leading-dash",
        "x" * 150 + ".txt",  # GNU ././@LongLink
        "tab\tand\\backslash",
        "quote'\"names",
    ):
        w.text(f"homedir/odd/{name}", f"odd name {name!r}\n")
    deep = "homedir/odd/" + "/".join(["deep-folder-name-" + "d" * 30] * 4)
    parts = deep.split("/")
    for i in range(3, len(parts) + 1):
        w.dir("/".join(parts[:i]))
    w.text(deep + "/file-at-the-bottom.txt", "deep\n")
    w.symlink("homedir/odd/long-target-link", "../" + "t" * 120 + "/target")

    # mail
    w.dir("homedir/etc", mode=0o750)
    w.dir("homedir/mail", mode=0o751)
    for sub in ("cur", "new", "tmp"):
        w.dir(f"homedir/mail/{sub}", mode=0o700)
    w.file(
        "homedir/mail/cur/1720000000.M1P1.server,S=900:2,S", _message(rng, seed, f"{user}@{main}", 1, False)
    )
    w.dir("homedir/mail/.Sent", mode=0o700)
    for sub in ("cur", "new", "tmp"):
        w.dir(f"homedir/mail/.Sent/{sub}", mode=0o700)
    boxes = {main: ["info", "sales", "empty"], addon: ["admin"]}
    n_msgs = max(1, round(8 * scale))
    for domain, names in boxes.items():
        w.dir(f"homedir/etc/{domain}", mode=0o750)
        passwd, shadow, quota = [], [], []
        for box in names:
            passwd.append(f"{box}:x:1001:1001::/home/{user}/mail/{domain}/{box}:/home/{user}\n")
            secret = _hash(rng)
            m.secrets.append(secret)
            shadow.append(f"{box}:{secret}:19800::::::\n")
            quota.append(f"{box}:{1 << 30}\n")
            m.parts.setdefault(("email_accounts", f"{box}@{domain}"), 0)
        w.text(f"homedir/etc/{domain}/passwd", "".join(passwd))
        w.text(f"homedir/etc/{domain}/shadow", "".join(shadow), mode=0o640)
        w.text(f"homedir/etc/{domain}/quota", "".join(quota))
        w.dir(f"homedir/mail/{domain}", mode=0o751)
        for box in names:
            if box == "empty":
                continue  # an account with no Maildir yet
            base = f"homedir/mail/{domain}/{box}"
            key = ("email_accounts", f"{box}@{domain}")
            w.dir(base, mode=0o751)
            for folder in ("", ".Sent", ".Trash"):
                root = f"{base}/{folder}" if folder else base
                if folder:
                    w.dir(root, mode=0o700)
                for sub in ("cur", "new", "tmp"):
                    w.dir(f"{root}/{sub}", mode=0o700)
            for i in range(n_msgs):
                msg = _message(rng, seed, f"{box}@{domain}", i, attach=i % 4 == 3)
                folder = (".Sent/cur", "cur", "new", ".Trash/cur")[i % 4]
                flag = "" if folder == "new" else ":2,S"
                w.file(
                    f"{base}/{folder}/{BASE_TIME - i * 977}.M{i}P{i * 7}.server,S={len(msg)}{flag}",
                    msg,
                    part=key,
                    mode=0o600,
                )
            w.text(f"{base}/maildirsize", "1073741824S\n", part=key)
            w.text(f"{base}/dovecot-uidlist", f"3 V{BASE_TIME} N{n_msgs + 1}\n", part=key)

    # ssl storage inside the home folder
    w.dir("homedir/ssl", mode=0o755)
    w.dir("homedir/ssl/certs")
    w.dir("homedir/ssl/keys", mode=0o700)
    key_pem, cert, _ = tls_material(seed, main)
    w.text(f"homedir/ssl/certs/{main.replace('.', '_')}_a1b2c_d3e4f_1735689599_abcdef.crt", cert)
    w.text("homedir/ssl/keys/a1b2c_d3e4f_0123456789abcdef.key", key_pem, mode=0o600)

    # what the caller asked for: raw names (bytes that need not be UTF-8), folders first
    for raw, data in w.extra_home:
        rel = "homedir/" + raw.decode(ENCODING, ERRORS)
        if data is None:
            w.dir(rel)
        else:
            w.file(rel, data)


# -- archives ----------------------------------------------------------------------------------


def _archive_names(user: str, style: str, when: datetime) -> str:
    if style == "whm":
        return user
    if style == "cpmove":
        return f"cpmove-{user}"
    if style == "user_backup":
        return f"backup-{when.month}.{when.day}.{when.year}_{when:%H-%M-%S}_{user}"
    raise ValueError(f"unknown style {style!r}")


class _GzipPipe:
    """gzip through pigz when it is there (fast for the big benchmark archive), else zlib."""

    def __init__(self, path: Path, use_pigz: bool) -> None:
        self._file = path.open("wb")
        self._proc: subprocess.Popen[bytes] | None = None
        self._gz: gzip.GzipFile | None = None
        pigz = shutil.which("pigz") if use_pigz else None
        if pigz:
            self._proc = subprocess.Popen([pigz, "-6", "-n", "-c"], stdin=subprocess.PIPE, stdout=self._file)
        else:
            self._gz = gzip.GzipFile(fileobj=self._file, mode="wb", mtime=0, compresslevel=6)

    def write(self, data: bytes) -> int:
        if self._proc is not None:
            assert self._proc.stdin is not None
            self._proc.stdin.write(data)
        else:
            assert self._gz is not None
            self._gz.write(data)
        return len(data)

    def close(self) -> None:
        if self._proc is not None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            if self._proc.wait() != 0:
                raise RuntimeError("pigz failed")
        elif self._gz is not None:
            self._gz.close()
        self._file.close()


class _Counter:
    def __init__(self, out: Any) -> None:
        self.out = out
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        self.out.write(data)
        return len(data)


def make_account_archive(
    out: str | os.PathLike[str],
    user: str,
    *,
    style: str = "whm",
    compressed: bool = True,
    homedir_tar: bool = False,
    seed: int = 0,
    size_scale: float = 1.0,
    when: datetime | None = None,
    cp_user: str | None = None,
    extra_home: Sequence[tuple[bytes, bytes | None]] = (),
) -> GeneratedArchive:
    """Write one account archive; ``out`` is a folder (the name follows ``style``) or a file path.

    ``size_scale`` 1 gives ~2.4 MB of tar; each unit adds ~1.15 MB (450 gives ~520 MB, ~74% of it
    left after gzip: photos, zips and attachments do not compress, pages, mail and SQL do).
    ``cp_user`` puts a different account inside than the one the file is named for.
    ``extra_home``: (home-relative name as bytes, content, or None for a folder) written at the
    end of the home folder, parents before what they hold.
    """
    when = when or datetime(2024, 7, 29, 13, 22, 32, tzinfo=UTC)
    stem = _archive_names(user, style, when)
    out_path = Path(out)
    if out_path.is_dir():
        out_path = out_path / (stem + (".tar.gz" if compressed else ".tar"))
    account = cp_user or user
    manifest = GeneratedArchive(
        path=out_path,
        user=account,
        name_user=user,
        top=stem + "/",
        style=style,
        compressed=compressed,
        homedir_tar=homedir_tar,
        domains=_domains(account),
    )
    rng = random.Random(f"{seed}:{account}")
    sink: Any = _GzipPipe(out_path, size_scale >= 20) if compressed else out_path.open("wb")
    counter = _Counter(sink)
    try:
        outer = tarfile.open(  # noqa: SIM115 - closed by the with below
            fileobj=counter, mode="w|", format=tarfile.GNU_FORMAT, encoding=ENCODING, errors=ERRORS
        )  # type: ignore[call-overload]
        with outer, tempfile.TemporaryFile() as inner_file:
            inner = None
            if homedir_tar:
                inner = tarfile.open(  # noqa: SIM115 - closed once the home folder is written
                    fileobj=inner_file, mode="w", format=tarfile.GNU_FORMAT, encoding=ENCODING, errors=ERRORS
                )
            writer = _Writer(manifest, outer, inner)
            writer.extra_home = extra_home
            if inner is not None:
                tar = inner

                def home() -> None:
                    _write_homedir_tar(writer, account, seed, size_scale, tar, inner_file)

            else:

                def home() -> None:
                    _write_home(writer, account, random.Random(f"{seed}:{account}:home"), seed, size_scale)

            _write_account(writer, account, rng, seed, size_scale, home=home, legacy_ssl=homedir_tar)
    finally:
        sink.close()
    manifest.uncompressed_size = counter.count
    return manifest


def _write_homedir_tar(
    w: _Writer, user: str, seed: int, scale: float, inner: tarfile.TarFile, inner_file: IO[bytes]
) -> None:
    """Old archives: the home folder as homedir.tar ("./..." names), written where homedir/ would be."""
    inner.addfile(w._info("./", tarfile.DIRTYPE, BASE_TIME, 0o711))
    w.m.add_part("homedir", "", 0)
    real_dir = w.dir

    def skip_root_dir(rel: str, **kwargs: Any) -> None:
        if rel != "homedir":  # homedir.tar holds "./" instead
            real_dir(rel, **kwargs)

    w.dir = skip_root_dir  # type: ignore[method-assign]
    try:
        _write_home(w, user, random.Random(f"{seed}:{user}:home"), seed, scale)
    finally:
        w.dir = real_dir  # type: ignore[method-assign]
    inner.close()
    info = w._info(w.top + "homedir.tar", tarfile.REGTYPE, BASE_TIME, 0o600)
    info.size = inner_file.tell()
    inner_file.seek(0)
    w.outer.addfile(info, inner_file)


# -- hostile archives --------------------------------------------------------------------------

HOSTILE_KINDS = (
    "absolute",
    "dotdot",
    "nul_name",
    "drive",
    "hardlink_out",
    "symlink_write",
    "device",
    "fifo",
    "absurd_size",
    "too_many_members",
    "truncated_gzip",
    "truncated_tar",
    "corrupt_gzip",
    "not_tar",
    "not_tar_gzip",
    "wrong_account",
    "nested_twice",
)


@dataclass
class HostileArchive:
    path: Path
    kind: str
    flag: str  # the flag the indexer must raise
    bad: list[str]  # member names (relative to the top) that must never show up
    good: list[str]  # home paths that must still be listed (before the damage)


def _raw_header(
    name: bytes, *, typeflag: bytes = b"0", size: int = 0, linkname: bytes = b"", mode: int = 0o644
) -> bytes:
    """A GNU tar header built by hand, so names carry exactly the given bytes."""
    hdr = bytearray(512)
    hdr[0 : len(name[:100])] = name[:100]
    hdr[100:108] = b"%07o\0" % mode
    hdr[108:116] = b"0001751\0"
    hdr[116:124] = b"0001751\0"
    hdr[124:136] = b"%011o\0" % size if size < 8**11 else b"\x80" + size.to_bytes(11, "big")
    hdr[136:148] = b"%011o\0" % BASE_TIME
    hdr[148:156] = b" " * 8
    hdr[156:157] = typeflag
    hdr[157 : 157 + len(linkname)] = linkname
    hdr[257:265] = b"ustar  \0"
    hdr[265:269] = b"bob\0"
    hdr[297:301] = b"bob\0"
    hdr[148:156] = b"%06o\0 " % sum(hdr)
    return bytes(hdr)


def _member(name: str, data: bytes = b"", **kwargs: Any) -> bytes:
    raw = name.encode(ENCODING, ERRORS)
    return _raw_header(raw, size=len(data), **kwargs) + data + bytes(-len(data) % 512)


def make_hostile_archive(path: str | os.PathLike[str], kind: str) -> HostileArchive:
    """Write an archive for one hostile case of ``HOSTILE_KINDS`` (bob's, top folder ``bob/``)."""
    out = Path(path)
    good_home = ["public_html", "public_html/index.html"]
    base = [
        _member("bob/", typeflag=b"5", mode=0o755),
        _member("bob/cp/", typeflag=b"5", mode=0o755),
        _member("bob/cp/bob", b"# cPanel\nUSER=bob\nDNS=bobsite.com\n"),
        _member("bob/homedir/", typeflag=b"5", mode=0o711),
        _member("bob/homedir/public_html/", typeflag=b"5", mode=0o755),
        _member("bob/homedir/public_html/index.html", b"<html>hi</html>\n"),
    ]
    end = bytes(1024)
    flag = "unsafe_members"
    bad: list[str] = []
    extra: list[bytes] = []
    compress = True
    if kind == "absolute":
        extra = [_member("/etc/cron.d/evil", b"* * * * * root sh\n"), _member("/bob/homedir/abs", b"x")]
        bad = ["/etc/cron.d/evil", "etc/cron.d/evil", "homedir/abs"]
    elif kind == "dotdot":
        extra = [
            _member("bob/homedir/../../../etc/passwd", b"root::0:0\n"),
            _member("bob/homedir/a/../../x", b"x"),
        ]
        bad = ["etc/passwd", "homedir/a", "x"]
    elif kind == "nul_name":
        raw = b"bob/homedir/safe.txt\0/../../../etc/shadow"
        extra = [_raw_header(raw, size=3) + b"abc" + bytes(509)]
        bad = ["homedir/safe.txt"]
    elif kind == "drive":
        extra = [_member("C:/Windows/evil.exe", b"MZ"), _member("c:evil", b"x")]
        bad = ["C:/Windows/evil.exe", "Windows/evil.exe", "c:evil"]
    elif kind == "hardlink_out":
        extra = [
            _member("bob/homedir/passwd-link", typeflag=b"1", linkname=b"/etc/passwd"),
            _member("bob/homedir/up-link", typeflag=b"1", linkname=b"../../etc/shadow"),
            _member("bob/homedir/later-link", typeflag=b"1", linkname=b"bob/homedir/not-yet"),
            _member("bob/homedir/not-yet", b"later\n"),
        ]
        bad = ["homedir/passwd-link", "homedir/up-link", "homedir/later-link"]
    elif kind == "symlink_write":
        extra = [
            _member("bob/homedir/etc-link", typeflag=b"2", linkname=b"/etc", mode=0o777),
            _member("bob/homedir/etc-link/cron.d/evil", b"* * * * * root sh\n"),
            _member("bob/homedir/etc-link", b"replaces the link\n"),
        ]
        bad = ["homedir/etc-link/cron.d/evil", "homedir/etc-link/cron.d"]
        good_home.append("etc-link")  # the link itself is an ordinary entry
    elif kind == "device":
        extra = [_member("bob/homedir/sda", typeflag=b"4"), _member("bob/homedir/null", typeflag=b"3")]
        bad = ["homedir/sda", "homedir/null"]
        flag = "special_files"
    elif kind == "fifo":
        extra = [_member("bob/homedir/pipe", typeflag=b"6")]
        bad = ["homedir/pipe"]
        flag = "special_files"
    elif kind == "absurd_size":
        extra = [_raw_header(b"bob/homedir/huge.bin", size=1 << 50) + b"x" * 512]
        bad = ["homedir/huge.bin"]
        flag = "absurd_size"
    elif kind == "too_many_members":
        extra = [_member(f"bob/homedir/many/f{i:05d}", b"x") for i in range(3000)]
        bad = ["homedir/many/f02999"]
        flag = "too_many_members"
    elif kind == "nested_twice":
        inner = _member("./", typeflag=b"5") + _member("./from-inner.txt", b"inner\n") + end
        extra = [
            _member("bob/homedir.tar", inner),
            _member("bob/homedir.tar", inner.replace(b"from-inner", b"second-tar")),
        ]
        bad = ["homedir/second-tar.txt"]
        good_home.append("from-inner.txt")
        flag = "nested_archive"
    elif kind == "wrong_account":
        base[2] = _member("bob/cp/alice", b"# cPanel\nUSER=alice\nDNS=alicesite.com\n")
        bad = []
        flag = "account_mismatch"
    data = b"".join(base + extra) + end + bytes(10240 - (len(b"".join(base + extra)) + 1024) % 10240)
    if kind == "truncated_tar":
        data = b"".join(base)  # cut at a member boundary: no end-of-archive marker
        compress = False
        flag = "truncated"
    elif kind == "not_tar":
        data = b"This is not a tar archive at all, just some text.\n" * 40
        compress = False
        flag = "not_tar"
    if kind == "not_tar_gzip":
        blob = gzip.compress(b"plain text inside gzip, not a tar\n" * 100, mtime=0)
        flag = "not_tar"
    elif compress:
        blob = gzip.compress(data, mtime=0)
    else:
        blob = data
    if kind == "truncated_gzip":
        big = _member("bob/homedir/big.bin", random.Random(1).randbytes(200_000))
        blob = gzip.compress(b"".join(base) + big + end, mtime=0)
        blob = blob[: len(blob) * 2 // 3]
        flag = "truncated"
        bad = ["homedir/big.bin"]
    elif kind == "corrupt_gzip":
        big = _member("bob/homedir/big.bin", text_blob(random.Random(1), 1, 400_000))
        whole = bytearray(gzip.compress(b"".join(base) + big + end, mtime=0))
        for i in range(len(whole) // 2, len(whole) // 2 + 64):
            whole[i] ^= 0x5A
        blob = bytes(whole)
        flag = "truncated"
        bad = ["homedir/big.bin"]
    out.write_bytes(blob)
    return HostileArchive(out, kind, flag, bad, good_home if flag != "not_tar" else [])


# -- destination trees -------------------------------------------------------------------------


@dataclass
class TreeEntry:
    path: str  # relative to the tree root
    layout: str
    user: str
    incomplete: bool = False
    split: bool = False


LAYOUTS = ("all", "whm", "legacy", "cpmove", "user_backup", "split")


def make_destination_tree(
    out_dir: str | os.PathLike[str],
    *,
    accounts: int = 3,
    layout: str = "all",
    seed: int = 0,
    size_scale: float = 0.2,
) -> list[TreeEntry]:
    """Lay out a destination as cPanel and users leave it; return the archives it holds."""
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    users = [f"user{i}" for i in range(accounts)]
    made: list[TreeEntry] = []
    cache: dict[tuple[str, bool], Path] = {}

    def archive(
        dest: Path, user: str, *, style: str = "whm", compressed: bool = True, when: datetime | None = None
    ) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        key = (f"{style}:{user}:{when}", compressed)
        if key in cache:  # same content elsewhere: copy instead of generating again
            name = _archive_names(user, style, when or datetime(2024, 7, 29, 13, 22, 32, tzinfo=UTC))
            target = dest / (name + (".tar.gz" if compressed else ".tar"))
            shutil.copyfile(cache[key], target)
            return target
        result = make_account_archive(
            dest, user, style=style, compressed=compressed, seed=seed, size_scale=size_scale, when=when
        )
        cache[key] = result.path
        return result.path

    def rel(path: Path) -> str:
        return path.relative_to(root).as_posix()

    if layout in ("all", "whm"):
        for date, incomplete in (("2025-07-04", False), ("2025-07-05", True)):
            folder = root / date / "accounts"
            for user in users:
                made.append(TreeEntry(rel(archive(folder, user)), "daily", user, incomplete))
            (folder / ".master.meta").write_text(json.dumps({"users": users, "date": date}))
            (root / date / "system").mkdir(exist_ok=True)
            (root / date / "system" / "system_files.tar").write_bytes(bytes(10240))
            if incomplete:
                (root / date / "backup_incomplete").write_text("")
        weekly = root / "weekly" / "2025-07-06" / "accounts"
        made.append(TreeEntry(rel(archive(weekly, users[0])), "weekly", users[0]))
        monthly = root / "monthly" / "2025-07-01" / "accounts"
        made.append(TreeEntry(rel(archive(monthly, users[0], compressed=False)), "monthly", users[0]))
        (monthly / ".master.meta").write_text("{}")
    if layout in ("all", "legacy"):
        for period in ("daily", "weekly", "monthly"):
            made.append(
                TreeEntry(rel(archive(root / "cpbackup" / period, users[-1])), f"legacy_{period}", users[-1])
            )
    if layout in ("all", "cpmove"):
        made.append(TreeEntry(rel(archive(root, users[0], style="cpmove")), "cpmove", users[0]))
        made.append(
            TreeEntry(
                rel(archive(root / "transfers", users[-1], style="cpmove", compressed=False)),
                "cpmove",
                users[-1],
            )
        )
    if layout in ("all", "user_backup"):
        when = datetime(2025, 7, 9, 3, 4, 5, tzinfo=UTC)
        made.append(
            TreeEntry(
                rel(archive(root / "manual", users[0], style="user_backup", when=when)),
                "user_backup",
                users[0],
            )
        )
    if layout in ("all", "split"):
        whole = archive(root / "split-source", users[-1], style="cpmove")
        data = whole.read_bytes()
        shutil.rmtree(root / "split-source")
        piece = max(1, len(data) // 3 + 1)
        (root / "split").mkdir(exist_ok=True)
        for n, start in enumerate(range(0, len(data), piece), 1):
            (root / "split" / f"cpmove-{users[-1]}.tar.gz.part{n:05d}").write_bytes(
                data[start : start + piece]
            )
        made.append(TreeEntry(f"split/cpmove-{users[-1]}.tar.gz", "cpmove", users[-1], split=True))
    return made


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out_dir")
    parser.add_argument("--accounts", type=int, default=3)
    parser.add_argument("--layout", choices=LAYOUTS, default="all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size-scale", type=float, default=0.2)
    parser.add_argument("--single", metavar="USER", help="write only one WHM archive for USER into OUT_DIR")
    args = parser.parse_args(argv)
    if args.single:
        Path(args.out_dir).mkdir(parents=True, exist_ok=True)
        made = make_account_archive(args.out_dir, args.single, seed=args.seed, size_scale=args.size_scale)
        print(f"{made.path}\t{made.path.stat().st_size}\t{made.uncompressed_size}\t{len(made.members)}")
        return
    for entry in make_destination_tree(
        args.out_dir, accounts=args.accounts, layout=args.layout, seed=args.seed, size_scale=args.size_scale
    ):
        print(f"{entry.layout}\t{entry.user}\t{entry.path}" + ("\tincomplete" if entry.incomplete else ""))


if __name__ == "__main__":
    main()
