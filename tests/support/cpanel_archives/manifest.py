"""What an archive holds, as written (`GeneratedArchive`, which tests compare the indexer against),
and the writer that records it while it writes the members.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.cpanel_archives.content import BASE_TIME, ENCODING, ERRORS, Key


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
