"""The .tar.gz a download is written into: a GNU tar, gzip-compressed (level 3), member by member.

Plain Python (no Django).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from destinations.formats.cpanel.tarsafe.common import printable
from destinations.localfs import safe_mode

GZIP_LEVEL = 3
TarOwner = tuple[int, int, str, str]  # uid, gid, user name, group name


class TarGzWriter:
    """A GNU tar, gzip-compressed, written member by member (file sizes known up front).

    Names are str with surrogateescape for bytes that are not UTF-8 (written back as those
    bytes). setuid/setgid bits are dropped from every mode.
    """

    def __init__(self, path: Path, level: int = GZIP_LEVEL) -> None:
        # Private whatever the umask: it holds the client's files.
        self._file = open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")  # noqa: SIM115 - closed by close()
        self._gz = gzip.GzipFile(fileobj=self._file, mode="wb", compresslevel=level, mtime=0)
        self.offset = 0
        self.members = 0
        self.names: set[str] = set()

    def _info(
        self, name: str, kind: bytes, mode: int, mtime: int, owner: TarOwner | None = None
    ) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = safe_mode(mode)
        info.mtime = max(0, int(mtime))
        if owner is not None:
            info.uid, info.gid, info.uname, info.gname = owner
        return info

    def _header(self, info: tarfile.TarInfo) -> None:
        data = info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
        self._gz.write(data)
        self.offset += len(data)
        self.members += 1
        self.names.add(info.name.rstrip("/"))

    def add_dir(self, name: str, mode: int, mtime: int, owner: TarOwner | None = None) -> None:
        self._header(self._info(name, tarfile.DIRTYPE, mode, mtime, owner))

    def add_symlink(self, name: str, target: str, mtime: int, owner: TarOwner | None = None) -> None:
        info = self._info(name, tarfile.SYMTYPE, 0o777, mtime, owner)
        info.linkname = target
        self._header(info)

    def add_hardlink(self, name: str, target: str, mode: int, mtime: int) -> None:
        info = self._info(name, tarfile.LNKTYPE, mode, mtime)
        info.linkname = target
        self._header(info)

    def add_bytes(self, name: str, data: bytes, mode: int, mtime: int) -> None:
        with self.file(name, len(data), mode, mtime) as out:
            out.write(data)

    @contextlib.contextmanager
    def file(
        self, name: str, size: int, mode: int, mtime: int, owner: TarOwner | None = None
    ) -> Iterator[_MemberSink]:
        info = self._info(name, tarfile.REGTYPE, mode, mtime, owner)
        info.size = size
        self._header(info)
        sink = _MemberSink(self, name, size)
        yield sink
        if sink.written != size:
            raise OSError(f"{printable(name)}: {sink.written} bytes written, the header says {size}")
        pad = -size % tarfile.BLOCKSIZE
        self._gz.write(b"\0" * pad)
        self.offset += pad

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            end = b"\0" * (2 * tarfile.BLOCKSIZE)
            self.offset += len(end)
            end += b"\0" * (-self.offset % tarfile.RECORDSIZE)
            self._gz.write(end)
            self._gz.close()
        finally:
            self._file.close()

    def __enter__(self) -> TarGzWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._gz.close()
            self._file.close()


class _MemberSink:
    def __init__(self, tar: TarGzWriter, name: str, size: int) -> None:
        self._tar = tar
        self._name = name
        self._size = size
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        length = len(data)
        if self.written + length > self._size:
            raise OSError(f"{printable(self._name)}: more bytes than the header says ({self._size})")
        self._tar._gz.write(data)
        self._tar.offset += length
        self.written += length
        return length
