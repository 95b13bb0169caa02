"""Destination trees laid out as cPanel and users leave them: WHM daily/weekly/monthly folders, legacy
cpbackup, cpmove files, user backups, a split archive.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tests.support.cpanel_archives.archive import _archive_names, make_account_archive


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
