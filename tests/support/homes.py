"""Realistic home folders for backup tests, and a way to compare two trees exactly."""

from __future__ import annotations

import hashlib
import os
import random
import stat
from pathlib import Path

ODD_NAMES = [
    "with space.txt",
    "new\nline.txt",
    "-leading-dash",
    "ünïcødé-名前.txt",
    "x" * 200,
]


def make_home(home: Path, *, seed: int = 0, files: int = 60) -> Path:
    """A cPanel-like home: public_html, mail for two boxes, odd names, links, an empty folder."""
    rng = random.Random(seed)
    home.mkdir(parents=True, exist_ok=True)
    (home / "public_html" / "wp-content" / "uploads").mkdir(parents=True, exist_ok=True)
    (home / "public_html" / ".htaccess").write_text("RewriteEngine On\n")
    for index in range(files):
        text = f"<?php // file {index}\n" + "echo 'hello';\n" * rng.randint(1, 300)
        (home / "public_html" / f"page{index}.php").write_text(text)
    (home / "public_html" / "wp-content" / "uploads" / "photo.jpg").write_bytes(rng.randbytes(300_000))
    (home / "big.log").write_bytes(b"GET / HTTP/1.1 200\n" * 600_000)  # > 8 MiB: several chunks
    for box in ("info", "sales"):
        maildir = home / "mail" / "example.com" / box
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        for number in range(5):
            (maildir / "cur" / f"1700000{number}.M1P1.host:2,S").write_text(
                f"Subject: {box} {number}\n\nbody\n"
            )
        (maildir / ".Sent" / "cur").mkdir(parents=True, exist_ok=True)
    (home / "etc" / "example.com").mkdir(parents=True, exist_ok=True)
    (home / "etc" / "example.com" / "passwd").write_text(
        "info:x:1000:1000::/home/u/mail/example.com/info:/home/u\nsales:x:1000:1000::/home/u/mail/example.com/sales:/home/u\n"
    )
    odd = home / "odd"
    odd.mkdir(exist_ok=True)
    for name in ODD_NAMES:
        (odd / name).write_text(f"odd {name!r}\n")
    bad = os.fsencode(odd) + b"/latin1-\xe9t\xe9.txt"
    with open(bad, "wb") as handle:
        handle.write(b"not utf-8 name\n")
    (home / "empty-folder").mkdir(exist_ok=True)
    (home / "empty.txt").write_bytes(b"")
    os.symlink("/usr/local/apache/domlogs/u", home / "access-logs")
    os.symlink("public_html/page1.php", home / "relative-link")
    os.symlink("does/not/exist", home / "dangling")
    (home / "public_html" / "page2.php").chmod(0o600)
    (home / "script.sh").write_text("#!/bin/sh\necho hi\n")
    (home / "script.sh").chmod(0o755)
    os.utime(home / "script.sh", (1_600_000_000, 1_600_000_000))
    return home


def tree_state(root: Path, *, ignore: tuple[str, ...] = ()) -> dict[bytes, tuple]:
    """Every entry under `root`: type, permission bits, size, sha256, link target, mtime (s)."""
    state: dict[bytes, tuple] = {}
    base = os.fsencode(root)
    for folder, dirs, files in os.walk(base):
        rel_folder = os.path.relpath(folder, base)
        if rel_folder != b"." and any(rel_folder.startswith(os.fsencode(p)) for p in ignore):
            continue
        for name in dirs + files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, base)
            if any(rel.startswith(os.fsencode(p)) for p in ignore):
                continue
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                state[rel] = ("l", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                state[rel] = ("d", stat.S_IMODE(info.st_mode))
            else:
                digest = hashlib.sha256(Path(os.fsdecode(path)).read_bytes()).hexdigest()
                state[rel] = ("f", stat.S_IMODE(info.st_mode), info.st_size, digest, int(info.st_mtime))
    return state


def change_home(home: Path, step: int) -> dict[str, str]:
    """Change, add and remove a few files; returns what happened by path."""
    changed = home / "public_html" / f"page{step}.php"
    changed.write_text(f"<?php // changed in step {step}\n")
    added = home / "public_html" / f"new-{step}.php"
    added.write_text(f"<?php // added in step {step}\n")
    removed = home / "public_html" / f"page{step + 20}.php"
    removed.unlink()
    return {
        "changed": str(changed.relative_to(home)),
        "added": str(added.relative_to(home)),
        "removed": str(removed.relative_to(home)),
    }
