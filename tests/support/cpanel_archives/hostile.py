"""Hostile archives: one hand-built tar per unsafe case of `HOSTILE_KINDS` that the indexer must
refuse or flag.
"""

from __future__ import annotations

import gzip
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.cpanel_archives.content import BASE_TIME, ENCODING, ERRORS, text_blob

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
