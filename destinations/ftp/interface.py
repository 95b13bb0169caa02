"""What the FTP seam deals in: a destination's FTP settings, the entries of a listing, and the
RemoteStore protocol that engines are written against (a real FtpConnection, or a fake in tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Literal, Protocol


@dataclass(frozen=True)
class FtpSettings:
    host: str
    port: int = 21
    username: str = ""
    password: str = field(default="", repr=False)
    directory: str = ""  # relative to the FTP user's home, normalised; "" is the home itself
    timeout: float = 30.0  # connect, every reply, every read and write
    retries: int = 5  # connection attempts after the first; 0 = unlimited
    ssl: bool = False  # explicit TLS: AUTH TLS, PBSZ 0, PROT P
    passive: bool = True  # False = active mode (EPRT, then PORT)
    tls_fingerprint: str = ""  # pinned "sha256:AA:BB:..."; "" = verify against the system store


EntryType = Literal["file", "dir", "link", "other"]


@dataclass(frozen=True)
class RemoteEntry:
    name: str
    type: EntryType
    size: int | None = None
    mtime: datetime | None = None  # timezone-aware UTC
    mode: int | None = None  # permission bits when the server tells them


class UploadStream(Protocol):
    """What `open_upload` yields. After the block ends, `stored` is the size the server reports
    for the file (None when it cannot say)."""

    stored: int | None

    def write(self, data: bytes) -> None: ...


class RemoteStore(Protocol):
    """What engines need from one connection (a real FtpConnection, or a fake in tests)."""

    def listdir(self, path: str = "") -> list[RemoteEntry]: ...
    def stat(self, path: str) -> RemoteEntry | None: ...
    def size(self, path: str) -> int | None: ...
    def makedirs(self, path: str) -> None: ...
    def upload_file(self, path: str, source: BinaryIO) -> int | None: ...
    def open_upload(self, path: str) -> contextlib.AbstractContextManager[UploadStream]: ...
    def download(self, path: str, *, offset: int = 0, length: int | None = None) -> Iterator[bytes]: ...
    def rename(self, src: str, dst: str) -> None: ...
    def remove(self, path: str) -> None: ...
    def rmdir(self, path: str) -> None: ...
    def remove_tree(self, path: str) -> None: ...
