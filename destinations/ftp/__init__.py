"""The FTP seam: the only module in Backupsite that talks FTP.

Built on aioftp, exposed as a synchronous API: Celery tasks and engines are plain
synchronous code, and each `FtpConnection` owns a private asyncio event loop that it drives
with `run_until_complete`. A connection is used by one thread at a time; parallel transfers
use several connections of one `FtpSession`.

Every path given to this module is relative to the destination's directory and is refused
(PathRefused) if it would leave it. Names that a server sends in listings are untrusted.

What aioftp 0.28.3 lacks and this module adds (measured in the team's FTP server notes):
- explicit FTPS data connections in the order real servers need (pure-ftpd, vsftpd): plain TCP
  first, then REST and the command, the 1xx reply, and only then the TLS handshake, resuming
  the control connection's TLS session;
- active mode (EPRT, then PORT), where the client stays the TLS client on the data channel;
- a login that never passes the password through any logger;
- per-transfer economy: TYPE I once per connection, 1 MiB blocks, no MLST probe per upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import hashlib
import io
import logging
import posixpath
import random
import re
import socket
import ssl
import struct
import termios
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, Literal, Protocol, TypeVar

import aioftp
from aioftp.common import SSLSessionBoundContext

if TYPE_CHECKING:
    from destinations.ftp.leases import ConnectionLeases, Lease

logger = logging.getLogger(__name__)

BLOCK_SIZE = 1024 * 1024
RETRY_BASE_DELAY = 1.0  # seconds before the first retry; doubles each time, with jitter
RETRY_MAX_DELAY = 30.0
RESUME_CHECK_BYTES = 64 * 1024  # tail of a partial upload compared before resuming it
LEASE_POLL_MIN = 0.02  # seconds between tries for a connection lease, growing to LEASE_POLL_MAX
LEASE_POLL_MAX = 0.25

T = TypeVar("T")


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


class FtpError(Exception):
    """A failure explained in plain language, with a hint for the admin."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ConnectFailed(FtpError):
    """Refused, unreachable, name not resolved, or no answer within the timeout."""


class LoginFailed(FtpError):
    """Wrong username or password: never retried."""


class TlsFailed(FtpError):
    """TLS not offered by the server, or the handshake failed."""


class TlsRequired(TlsFailed):
    """The server accepts only TLS sessions, and the destination has explicit TLS off."""


class CertificateUntrusted(TlsFailed):
    def __init__(self, message: str, hint: str = "", *, fingerprint: str) -> None:
        super().__init__(message, hint)
        self.fingerprint = fingerprint


class CertificateMismatch(TlsFailed):
    def __init__(self, message: str, hint: str = "", *, fingerprint: str, expected: str) -> None:
        super().__init__(message, hint)
        self.fingerprint = fingerprint
        self.expected = expected


class UnsupportedServer(FtpError):
    """The server is one Backupsite refuses (Windows-hosted FTP servers)."""


class FtpTimeout(FtpError):
    """The server stopped answering within the timeout."""


class TransientError(FtpError):
    """A 4xx reply or a dropped connection: the operation may succeed when retried."""


class PermanentError(FtpError):
    """A 5xx reply (other than a failed login)."""

    def __init__(self, message: str, hint: str = "", *, code: str = "") -> None:
        super().__init__(message, hint)
        self.code = code


class ResumeRefused(PermanentError):
    """The server will not resume an upload (REST or APPE refused): send it again from the start."""


class DirectoryMissing(PermanentError):
    """The destination directory does not exist (and creating it was not asked for)."""


class DestinationBusy(FtpError):
    """Every connection slot of the destination stayed in use for the whole wait."""


class PathRefused(FtpError):
    """A path that would leave the destination directory, or an unsafe remote name."""


# The failures that mean the destination cannot be reached or logged in to at all (as opposed
# to one transfer or one path going wrong): callers report these as the destination's problem.
CONNECTION_FAILURES: tuple[type[FtpError], ...] = (ConnectFailed, LoginFailed, TlsFailed)


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


# --- paths and names ---------------------------------------------------------------------------

_CONTROL_CHARS = ("\0", "\r", "\n")


def clean_path(path: str) -> str:
    """`path` normalised relative to the destination directory ("" is the directory itself).

    Refuses (PathRefused) absolute paths, '..' components, NUL, CR and LF.
    """
    if any(char in path for char in _CONTROL_CHARS):
        raise PathRefused(f"refusing a path with a control character: {path!r}")
    if path.startswith("/"):
        raise PathRefused(
            f"refusing an absolute path: {path!r}", hint="Paths are relative to the destination directory."
        )
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PathRefused(f"refusing a path that climbs out with '..': {path!r}")
    return "/".join(parts)


def _clean_directory(directory: str) -> str:
    # The destination directory is relative to the FTP home even when written "/backups".
    return clean_path(directory.lstrip("/"))


def unsafe_name_reason(name: str) -> str | None:
    """Why a name from a listing must not be used (None when it is safe)."""
    if name in ("", ".", ".."):
        return "a special name"
    if "/" in name:
        return "a slash"
    if any(char in name for char in _CONTROL_CHARS):
        return "a control character"
    if any("\udc80" <= char <= "\udcff" for char in name):
        return "bytes that are not UTF-8"
    return None


def _join(root: str, relative: str) -> str:
    if not relative:
        return root
    return root.rstrip("/") + "/" + relative


# --- TLS ---------------------------------------------------------------------------------------


def fingerprint_of(der: bytes) -> str:
    """The "sha256:AA:BB:..." form of a DER certificate, the form the destination form shows and pins."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return "sha256:" + ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def normalise_fingerprint(value: str) -> str:
    """Accept "sha256:aa:bb..", "AA:BB..", "aabb.." and spaces; return the canonical form."""
    text = value.strip()
    if text.lower().startswith("sha256:"):
        text = text[7:]
    hexdigits = re.sub(r"[\s:]", "", text).upper()
    if not re.fullmatch(r"[0-9A-F]{64}", hexdigits):
        raise ValueError(f"not a SHA-256 certificate fingerprint: {value!r}")
    return "sha256:" + ":".join(hexdigits[i : i + 2] for i in range(0, 64, 2))


@functools.cache
def _tls_context(pinned: bool) -> ssl.SSLContext:
    if pinned:
        # The pin is checked by hand after the handshake: exactly that certificate, any issuer.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context()


def _peer_fingerprint(writer: asyncio.StreamWriter) -> str | None:
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return fingerprint_of(der) if der else None


# --- replies -----------------------------------------------------------------------------------

_MENTIONS_TLS = re.compile(r"\b(TLS|SSL|encrypt\w*|cleartext|secure\w*)\b", re.IGNORECASE)
_REPLY_HINTS = {
    "452": "The FTP server is out of space or over its quota.",
    "552": "The FTP server is out of space or over its quota.",
    "553": "The FTP server does not allow this file name.",
}


def _reply_text(info: list[str] | str) -> str:
    lines = [info] if isinstance(info, str) else info
    return " ".join(part for part in (line.strip(" -") for line in lines) if part)


def _reply_code(exc: aioftp.StatusCodeError) -> str:
    return str(exc.received_codes[-1]) if exc.received_codes else ""


def _reply_error(exc: aioftp.StatusCodeError, what: str) -> FtpError:
    code = _reply_code(exc)
    message = f"the server refused {what}: {code} {_reply_text(exc.info)}".rstrip()
    if code.startswith("4"):
        return TransientError(message, _REPLY_HINTS.get(code, ""))
    return PermanentError(message, _REPLY_HINTS.get(code, ""), code=code)


def _scrub(exc: FtpError, secret: str) -> FtpError:
    """Make sure a password echoed by a server never reaches a log or the UI."""
    if secret and (secret in exc.message or secret in exc.hint):
        exc.message = exc.message.replace(secret, "***")
        exc.hint = exc.hint.replace(secret, "***")
        exc.args = (exc.message,)
    return exc


def _retry_delay(attempt: int) -> float:
    delay = min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2 ** max(0, attempt - 1))
    return random.uniform(delay / 2, delay)


def _is_transient(exc: FtpError) -> bool:
    return isinstance(exc, TransientError | FtpTimeout | ConnectFailed)


# --- listings ----------------------------------------------------------------------------------

_LIST_LINE = re.compile(
    r"^(?P<mode>[-dlbcpsD][-rwxsStTlL]{9})\S?\s+\d+\s+(?:\S+\s+){1,2}?(?P<size>\d+)\s+"
    r"(?P<month>[A-Za-z]{3})\s+(?P<day>\d{1,2})\s+(?P<when>\d{1,2}:\d{2}|\d{4})\s(?P<name>.*)$"
)
_MONTHS = {
    month: number
    for number, month in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1
    )
}


def _mode_bits(text: str) -> int:
    mode = 0
    for index, char in enumerate(text[:9]):
        if char in "rwxst":
            mode |= 1 << (8 - index)
    if text[2] in "sS":
        mode |= 0o4000
    if text[5] in "sS":
        mode |= 0o2000
    if text[8] in "tT":
        mode |= 0o1000
    return mode


def _parse_list_time(month: str, day: str, when: str, now: datetime) -> datetime | None:
    try:
        month_number = _MONTHS[month.lower()]
        if ":" in when:
            hour, minute = (int(x) for x in when.split(":"))
            stamp = datetime(now.year, month_number, int(day), hour, minute, tzinfo=UTC)
            if stamp > now + timedelta(days=1):  # "Dec 31 23:59" seen in January is last year's
                stamp = stamp.replace(year=now.year - 1)
            return stamp
        return datetime(int(when), month_number, int(day), tzinfo=UTC)
    except (KeyError, ValueError):
        return None


def _parse_mlsx_time(value: str | None) -> datetime | None:
    # By hand rather than strptime, which costs more than the rest of a listing line.
    if not value or len(value) < 14 or not value[:14].isdigit():
        return None
    try:
        stamp = datetime(
            int(value[0:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[8:10]),
            int(value[10:12]),
            int(value[12:14]),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    if len(value) > 15 and value[14] == "." and value[15:].isdigit():
        stamp += timedelta(microseconds=int((value[15:] + "000000")[:6]))
    return stamp


def _parse_facts(line: str) -> tuple[str, dict[str, str]]:
    facts_text, _, name = line.partition(" ")
    facts = {}
    for fact in facts_text.split(";"):
        key, sep, value = fact.partition("=")
        if sep:
            facts[key.strip().lower()] = value
    return name, facts


_OCTAL_MODE = re.compile(r"[0-7]{1,6}")


def _entry_from_facts(name: str, facts: dict[str, str]) -> RemoteEntry | None:
    kind = facts.get("type", "").lower()
    if kind in ("cdir", "pdir"):
        return None
    entry_type: EntryType
    if kind == "file":
        entry_type = "file"
    elif kind == "dir":
        entry_type = "dir"
    elif kind.startswith(("os.unix=slink", "os.unix=symlink")):
        entry_type = "link"
    else:
        entry_type = "other"
    size = facts.get("size", "")
    mode = facts.get("unix.mode", "")
    return RemoteEntry(
        name=name,
        type=entry_type,
        size=int(size) if size.isdigit() else None,
        mtime=_parse_mlsx_time(facts.get("modify")),
        mode=int(mode, 8) & 0o7777 if _OCTAL_MODE.fullmatch(mode) else None,
    )


def _entry_from_list_line(line: str, now: datetime) -> RemoteEntry | None:
    match = _LIST_LINE.match(line)
    if not match:
        return None  # "total 12", a blank line, or a format we do not know
    mode_text = match["mode"]
    name = match["name"]
    entry_type: EntryType
    if mode_text[0] == "-":
        entry_type = "file"
    elif mode_text[0] in "dD":
        entry_type = "dir"
    elif mode_text[0] == "l":
        entry_type = "link"
        name = name.split(" -> ", 1)[0]
    else:
        entry_type = "other"
    if name in (".", ".."):
        return None
    return RemoteEntry(
        name=name,
        type=entry_type,
        size=int(match["size"]) if entry_type == "file" else None,
        mtime=_parse_list_time(match["month"], match["day"], match["when"], now),
        mode=_mode_bits(mode_text[1:]),
    )


def parse_listing(data: bytes, *, mlsd: bool, where: str = "") -> list[RemoteEntry]:
    """Entries of an MLSD or `LIST -a` answer; unsafe names are dropped and logged."""
    entries = []
    now = datetime.now(UTC)
    for raw in data.split(b"\n"):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw.strip():
            continue
        line = raw.decode("utf-8", "surrogateescape")
        if mlsd:
            name, facts = _parse_facts(line)
            entry = _entry_from_facts(name, facts)  # None for cdir/pdir: "." and ".." as such
        else:
            entry = _entry_from_list_line(line, now)
        if entry is None:
            continue
        reason = unsafe_name_reason(entry.name)
        if reason:
            logger.warning(
                "dropped a name with %s from the listing of %s: %r", reason, where or "/", entry.name
            )
            continue
        entries.append(entry)
    return entries


# --- the asyncio side: one control connection ----------------------------------------------------


@dataclass
class _UploadProgress:
    offset: int = 0  # where this attempt started in the file
    started: bool = False  # the server accepted STOR/APPE: what lies remote is ours from here
    sent: int = 0  # bytes handed to the data connection by this attempt
    decided: bool = False  # the offset was chosen (a failure before that changed nothing remote)
    resume_refused: bool = False  # the server refused to resume: later attempts start from 0


class _DataChannel:
    """One data connection, opened after the transfer command was accepted."""

    def __init__(
        self,
        control: _Control,
        reader: asyncio.StreamReader | None,
        writer: asyncio.StreamWriter | None,
    ) -> None:
        self.control = control
        self.reader = reader
        self.writer = writer
        self.finished = writer is None  # the server answered 2xx straight away (nothing to move)

    async def read(self, size: int = BLOCK_SIZE) -> bytes:
        if self.reader is None:
            return b""
        return await asyncio.wait_for(self.reader.read(size), self.control.timeout)

    async def read_all(self) -> bytes:
        chunks = []
        while chunk := await self.read():
            chunks.append(chunk)
        return b"".join(chunks)

    async def write(self, data: bytes | bytearray) -> None:
        assert self.writer is not None
        self.writer.write(data)
        # A 1 MiB block can take longer than the timeout on a slow link: what times out is a
        # stall (nothing taken by the server for `timeout` seconds), not a slow drain.
        sock = self.writer.get_extra_info("socket")
        last = self._pending(sock)
        while True:
            try:
                await asyncio.wait_for(self.writer.drain(), self.control.timeout)
                return
            except TimeoutError:
                pending = self._pending(sock)
                if pending >= last:
                    raise
                last = pending

    def _pending(self, sock: object) -> int:
        assert self.writer is not None
        return self.writer.transport.get_write_buffer_size() + _unacknowledged(sock)

    async def finish(self) -> str:
        """Close our side (end of an upload), wait for the final 2xx reply, and return its text."""
        text = ""
        if self.writer is not None:
            await self._wait_sent()
            self.writer.close()  # flushes, then EOF (and TLS close_notify): the end of an upload
        if not self.finished:
            self.finished = True
            _, info = await self.control.command(None, "2xx", "1xx")
            text = _reply_text(info)
        if self.writer is not None:
            # The reply settled the transfer: waiting for the server's TLS goodbye would only
            # cost time (or the whole timeout, with servers that wait for our FIN instead).
            _abort_transport(self.writer)
        return text

    async def _wait_sent(self) -> None:
        """Wait until the server has taken everything we wrote, for as long as it keeps taking.

        Socket buffers can hold many seconds' worth of data on a slow link; the final reply
        only comes once the server has read it all. Counting that wait against the reply's
        timeout would fail healthy uploads, so the timeout applies to a stall instead: no byte
        acknowledged for `timeout` seconds."""
        assert self.writer is not None
        loop = asyncio.get_running_loop()
        sock = self.writer.get_extra_info("socket")
        last = -1
        deadline = loop.time() + self.control.timeout
        while True:
            pending = self._pending(sock)
            if pending <= 0:
                return
            if last < 0 or pending < last:
                last = pending
                deadline = loop.time() + self.control.timeout
            elif loop.time() >= deadline:
                raise TimeoutError
            await asyncio.sleep(0.02)

    def abort(self) -> None:
        """Reset the data connection: the server sees a failed transfer, not a short file."""
        if self.writer is None:
            return
        with contextlib.suppress(OSError):
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        _abort_transport(self.writer)


def _unacknowledged(sock: object) -> int:
    """Bytes written to `sock` that the peer has not acknowledged yet (0 when unknown)."""
    fileno = getattr(sock, "fileno", None)
    if fileno is None:
        return 0
    try:
        raw = fcntl.ioctl(fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError):
        return 0
    return int(struct.unpack("i", raw)[0])


def _abort_transport(writer: asyncio.StreamWriter) -> None:
    """Drop a data connection now. A transport that already finished closing by itself (an
    upload whose last bytes drained after close()) has let go of its event loop, and
    CPython's abort() then fails with AttributeError: there is nothing left to drop."""
    with contextlib.suppress(AttributeError, RuntimeError):
        writer.transport.abort()


class _Control(aioftp.Client):
    """aioftp's control connection, plus what aioftp lacks (see the module docstring)."""

    def __init__(self, settings: FtpSettings) -> None:
        super().__init__(
            socket_timeout=settings.timeout,
            connection_timeout=settings.timeout,
            path_timeout=settings.timeout,
            encoding="utf-8",
        )
        self.settings = settings
        self.timeout = settings.timeout
        self.where = f"{settings.host}:{settings.port}"
        self.system = ""
        self.features: frozenset[str] = frozenset()
        self.fingerprint: str | None = None
        self.root = "/"
        self.broken = False  # the protocol state is unknown: close, and reconnect on next use
        self.tcp_connected = False
        self.peer_ip = ""
        self.local_ip = ""
        self._data_tls: ssl.SSLContext | None = None
        self._epsv = True
        self._eprt = True
        self._mlsd = True
        self._mlst = False
        self._size = True

    # -- connection and login

    async def _open_connection(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await super()._open_connection(host, port)
        self.tcp_connected = True
        peer = writer.get_extra_info("peername")
        local = writer.get_extra_info("sockname")
        self.peer_ip, self.local_ip = str(peer[0]), str(local[0])
        sock = writer.get_extra_info("socket")
        with contextlib.suppress(OSError, AttributeError):
            # A control connection idles through long transfers; keep NAT tables from dropping it.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 15)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4)
        return reader, writer

    async def parse_line(self) -> tuple[aioftp.Code, str]:
        # aioftp's version decodes strictly: one latin-1 banner line would kill the session.
        line = await self.stream.readline()
        if not line:
            self.stream.close()
            raise ConnectionResetError("the server closed the control connection")
        text = line.decode(self.encoding, errors="replace").rstrip("\r\n")
        if self.settings.password and self.settings.password in text:  # a server echoing it back
            text = text.replace(self.settings.password, "***")
        logger.debug("< %s", text)
        return aioftp.Code(text[:3]), text[3:]

    async def open(self, directory: str, *, create_root: bool) -> None:
        settings = self.settings
        for value, what in ((settings.username, "username"), (settings.password, "password")):
            if any(char in value for char in _CONTROL_CHARS):
                raise LoginFailed(f"the {what} contains a line break or NUL", hint=f"Retype the {what}.")
        try:
            await self.connect(settings.host, settings.port)
        except TimeoutError:
            if not self.tcp_connected:
                raise ConnectFailed(
                    f"no answer from {self.where} within {self.timeout:g} s",
                    hint="Check the host name and port, and that a firewall lets this server reach it.",
                ) from None
            raise FtpTimeout(
                f"connected to {self.where}, but no FTP greeting came within {self.timeout:g} s",
                hint="Is this an FTP server? Implicit FTPS (usually port 990) is not supported.",
            ) from None
        except socket.gaierror as exc:
            raise ConnectFailed(
                f"the host name {settings.host!r} could not be resolved ({exc.strerror})",
                hint="Check the host name.",
            ) from None
        except OSError as exc:
            if not self.tcp_connected:
                raise ConnectFailed(
                    f"could not connect to {self.where}: {exc.strerror or exc}",
                    hint="Check the host name and port, and that the FTP server is running.",
                ) from None
            raise TransientError(f"{self.where} closed the connection before greeting") from None
        except aioftp.StatusCodeError as exc:  # 421: too many connections, or going down
            raise _reply_error(exc, "the connection") from None
        if settings.ssl:
            await self._start_tls()
        await self._login()
        await self._identify()
        await self.command("TYPE I", "200")
        try:
            _, info = await self.command("PWD", "257")
            home = str(self.parse_directory_response(info[-1]))
        except aioftp.StatusCodeError:
            home = "/"
        if not home.startswith("/"):  # no PWD, or a reply without a quoted path
            home = "/"
        self.root = posixpath.normpath(_join(home, directory)) if directory else home
        if directory:
            await self._enter_root(home, directory, create_root)

    async def _start_tls(self) -> None:
        settings = self.settings
        pinned = ""
        if settings.tls_fingerprint:
            try:
                pinned = normalise_fingerprint(settings.tls_fingerprint)
            except ValueError as exc:
                raise TlsFailed(str(exc), hint="Paste the fingerprint as sha256:AA:BB:...") from None
        try:
            await self.command("AUTH TLS", "234")
        except aioftp.StatusCodeError as exc:
            raise TlsFailed(
                "the server does not offer TLS "
                f"(AUTH TLS answered {_reply_code(exc)} {_reply_text(exc.info)})",
                hint="Turn off explicit SSL-FTP for this destination, or enable TLS on the FTP server.",
            ) from None
        try:
            await asyncio.wait_for(
                self.stream.start_tls(_tls_context(bool(pinned)), server_hostname=settings.host), self.timeout
            )
        except ssl.SSLCertVerificationError as exc:
            fingerprint = await _probe_fingerprint(settings)
            raise CertificateUntrusted(
                f"the server's TLS certificate is not trusted ({exc.verify_message})",
                hint=f"If this is your server's own certificate, pin its fingerprint: {fingerprint}"
                if fingerprint
                else "Pin the server's certificate fingerprint if you trust it.",
                fingerprint=fingerprint,
            ) from None
        except (ssl.SSLError, OSError) as exc:
            self.broken = True
            raise TlsFailed(f"the TLS handshake with {self.where} failed: {exc}") from None
        fingerprint = _peer_fingerprint(self.stream.writer) or ""
        self.fingerprint = fingerprint
        if pinned and fingerprint != pinned:
            raise CertificateMismatch(
                f"the server's TLS certificate {fingerprint} is not the pinned one {pinned}",
                hint="If the certificate was renewed on purpose, pin the new fingerprint; "
                "otherwise someone may be intercepting the connection.",
                fingerprint=fingerprint,
                expected=pinned,
            )
        await self.command("PBSZ 0", "200")
        await self.command("PROT P", "200")
        ssl_object = self.stream.writer.get_extra_info("ssl_object")
        # Data connections resume this session: vsftpd insists (require_ssl_reuse), and it is cheaper.
        self._data_tls = SSLSessionBoundContext(
            ssl.PROTOCOL_TLS_CLIENT, context=ssl_object.context, session=ssl_object.session
        )

    async def _login(self) -> None:
        settings = self.settings
        try:
            code, info = await self.command("USER " + settings.username, ("230", "33x"))
            if code == "331":
                # Written by hand so that no logger, not even aioftp's censoring one, sees it.
                await self.stream.write(f"PASS {settings.password}\r\n".encode(self.encoding))
                code, info = await self.command(None, ("230", "33x"))
        except aioftp.StatusCodeError as exc:
            refusal, text = _reply_code(exc), _reply_text(exc.info)
            if not settings.ssl and _MENTIONS_TLS.search(text):
                raise TlsRequired(
                    f"the server requires TLS: it answered {refusal} {text}",
                    hint="Enable explicit SSL-FTP (FTPS) for this destination.",
                ) from None
            if refusal.startswith("4"):
                self.broken = refusal == "421"
                raise TransientError(f"the server refused the login for now: {refusal} {text}") from None
            raise LoginFailed(
                f"the server refused the username or password: {refusal} {text}",
                hint="Check the username and password of this destination.",
            ) from None
        if code != "230":
            raise LoginFailed(
                f"the server asks for an account (ACCT) after the password: {code} {_reply_text(info)}",
                hint="FTP accounts (ACCT) are not supported.",
            )

    async def _identify(self) -> None:
        try:
            _, info = await self.command("SYST", "2xx")
            self.system = _reply_text(info)
        except aioftp.StatusCodeError:
            self.system = ""
        if "windows" in self.system.lower():
            raise UnsupportedServer(
                "Windows-hosted FTP servers are not supported as backup destinations",
                hint=f"The server says it runs {self.system!r}. Use an FTP server on Linux or another "
                "Unix (pure-ftpd, vsftpd, ProFTPD): Windows servers lose Unix permissions and "
                "treat file names differently.",
            )
        try:
            _, info = await self.command("FEAT", "211")
        except aioftp.StatusCodeError:
            return  # no FEAT: try MLSD and fall back when refused
        self.features = frozenset(line.split()[0].upper() for line in info[1:-1] if line.strip())
        # RFC 3659 announces MLSD under the MLST feature; pure-ftpd lists both, pyftpdlib one.
        self._mlsd = self._mlst = bool({"MLST", "MLSD"} & self.features)

    async def _enter_root(self, home: str, directory: str, create_root: bool) -> None:
        try:
            await self.command("CWD " + self.root, "2xx")
            return
        except aioftp.StatusCodeError as exc:
            if not _reply_code(exc).startswith("5"):
                raise
            if not create_root:
                raise DirectoryMissing(
                    f"the folder {directory!r} does not exist in the FTP home {home!r}",
                    hint="Create it on the server, or let Backupsite create it.",
                    code=_reply_code(exc),
                ) from None
        await self.makedirs(home, directory)
        await self.command("CWD " + self.root, "2xx")

    async def quit_quietly(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.command("QUIT", "2xx"), min(self.timeout, 5.0))

    # -- data connections

    async def open_data(self, command: str, *, offset: int = 0) -> _DataChannel:
        """The data connection for `command` (RETR, STOR, MLSD, ...), after its 1xx reply."""
        if self.settings.passive:
            return await self._open_passive(command, offset)
        return await self._open_active(command, offset)

    async def _send_transfer_command(self, command: str, offset: int) -> bool:
        """REST (if any) and the command; True when the 1xx came (data follows), False on 2xx.

        An upload that resumes (STOR after REST, or APPE) and is refused with a reply that
        means "not here" rather than "not now" raises ResumeRefused: REST refused (502, 504,
        550...), or the command refused after it (ProFTPD: 451 Append/Restart not permitted).
        A data connection race (425, 426) or a closing server (421) stays an ordinary error.
        """
        resuming = command.startswith("APPE ") or (offset > 0 and command.startswith("STOR "))
        step = "REST"
        try:
            if offset:
                await self.command(f"REST {offset}", "350")
            step = command.split(" ", 1)[0]
            code, _ = await self.command(command, ("1xx", "2xx"))
        except aioftp.StatusCodeError as exc:
            reply = _reply_code(exc)
            if resuming and reply[:1] in ("4", "5") and reply not in ("421", "425", "426"):
                raise ResumeRefused(
                    f"{step} refused: {reply} {_reply_text(exc.info)}".rstrip(), code=reply
                ) from None
            raise
        return code.startswith("1")

    async def _passive_port(self) -> int:
        if self._epsv:
            try:
                _, info = await self.command("EPSV", "229")
                return self.parse_epsv_response(info[-1])[1]
            except aioftp.StatusCodeError as exc:
                if not _reply_code(exc).startswith("5"):
                    raise
                self._epsv = False
        _, info = await self.command("PASV", "227")
        # The address in the reply is ignored: behind NAT it is often a private one.
        return self.parse_pasv_response(info[-1])[1]

    async def _open_passive(self, command: str, offset: int) -> _DataChannel:
        port = await self._passive_port()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.peer_ip, port, limit=BLOCK_SIZE), self.timeout
            )
        except (OSError, TimeoutError) as exc:
            raise TransientError(
                f"could not open a data connection to {self.peer_ip}:{port}: {exc}",
                hint="A firewall may block the passive port range; try active mode.",
            ) from None
        started = False
        try:
            started = await self._send_transfer_command(command, offset)
            if not started:
                writer.close()
                return _DataChannel(self, None, None)
            if self._data_tls is not None:
                await self._secure_data(writer)
        except BaseException:
            writer.transport.abort()
            self.broken = self.broken or started  # the transfer's final reply is still to come
            raise
        return self._channel(reader, writer)

    async def _announce_port(self, ip: str, port: int) -> None:
        if self._eprt:
            family = 2 if ":" in ip else 1
            try:
                await self.command(f"EPRT |{family}|{ip}|{port}|", "200")
                return
            except aioftp.StatusCodeError as exc:
                if not _reply_code(exc).startswith("5") or family == 2:
                    raise
                self._eprt = False
        await self.command(f"PORT {ip.replace('.', ',')},{port >> 8},{port & 0xFF}", "200")

    async def _open_active(self, command: str, offset: int) -> _DataChannel:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.local_ip else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as listener:
            listener.bind((self.local_ip, 0))
            listener.listen(1)
            listener.setblocking(False)
            await self._announce_port(self.local_ip, listener.getsockname()[1])
            accepting = asyncio.ensure_future(loop.sock_accept(listener))
            try:
                if not await self._send_transfer_command(command, offset):
                    accepting.cancel()
                    return _DataChannel(self, None, None)
                try:
                    sock, address = await asyncio.wait_for(accepting, self.timeout)
                except TimeoutError:
                    self.broken = True
                    raise TransientError(
                        f"the server did not open the active data connection within {self.timeout:g} s",
                        hint="A firewall in front of this server may block incoming data connections: "
                        "try passive mode.",
                    ) from None
            except BaseException:
                accepting.cancel()
                raise
        try:
            if address[0] != self.peer_ip:
                # Whoever reaches the port first could feed or read the transfer.
                self.broken = True
                raise TransientError(
                    f"refused an active data connection from {address[0]}: the server is {self.peer_ip}"
                )
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._data_tls is not None:
                # The client stays the TLS client even though the server connected to us.
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        sock=sock,
                        ssl=self._data_tls,
                        server_hostname=self.settings.host,
                        ssl_handshake_timeout=self.timeout,
                        limit=BLOCK_SIZE,
                    ),
                    self.timeout,
                )
                self._check_data_certificate(writer)
            else:
                reader, writer = await asyncio.open_connection(sock=sock, limit=BLOCK_SIZE)
        except BaseException:
            sock.close()
            self.broken = True  # the transfer's final reply is still to come
            raise
        return self._channel(reader, writer)

    async def _secure_data(self, writer: asyncio.StreamWriter) -> None:
        assert self._data_tls is not None
        try:
            await asyncio.wait_for(
                writer.start_tls(
                    self._data_tls, server_hostname=self.settings.host, ssl_handshake_timeout=self.timeout
                ),
                self.timeout,
            )
        except ssl.SSLError as exc:
            raise TlsFailed(f"the TLS handshake on the data connection failed: {exc}") from None
        self._check_data_certificate(writer)

    def _check_data_certificate(self, writer: asyncio.StreamWriter) -> None:
        fingerprint = _peer_fingerprint(writer)
        if fingerprint and self.fingerprint and fingerprint != self.fingerprint:
            raise CertificateMismatch(
                f"the data connection presented another certificate ({fingerprint}) than the "
                f"control connection ({self.fingerprint})",
                hint="Someone may be intercepting the data connections.",
                fingerprint=fingerprint,
                expected=self.fingerprint,
            )

    def _channel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> _DataChannel:
        with contextlib.suppress(AttributeError, RuntimeError):
            writer.transport.set_write_buffer_limits(high=2 * BLOCK_SIZE)
        return _DataChannel(self, reader, writer)

    async def abort_transfer(self, channel: _DataChannel) -> None:
        """Stop a transfer early and keep the control connection in step.

        Resetting the data connection ends the transfer with one reply: 226 when the server had
        already sent everything, 426/451 when it was cut, or, from pure-ftpd after a cut
        download, a second 1xx line (its statistics) and nothing else; a NOOP then marks the
        end. No ABOR: servers answer it with one or two replies, and pure-ftpd, which reads
        the control connection during a transfer, may swallow a command sent right behind it.
        """
        channel.abort()
        if channel.finished:
            return
        channel.finished = True
        code, _ = await self.parse_response()
        if not code.startswith("1"):
            return
        await self.command("NOOP")
        for _ in range(8):
            code, _ = await self.parse_response()
            if code == "200":
                return
        raise TransientError("the server did not settle after a transfer was stopped early")

    # -- operations

    @contextlib.contextmanager
    def _transfer(self, channel: _DataChannel) -> Iterator[None]:
        """A transfer on `channel`. When it fails, the server may still send the transfer's
        final reply: never read it as the answer to a later command; reconnect instead."""
        try:
            yield
        except BaseException:
            channel.abort()
            self.broken = True
            raise

    async def listing(self, remote: str) -> list[RemoteEntry]:
        channel = None
        if self._mlsd:
            try:
                channel = await self.open_data(f"MLSD {remote}")
            except aioftp.StatusCodeError as exc:
                if _reply_code(exc) not in ("500", "502", "504"):
                    raise
                self._mlsd = False
        if channel is None:
            # pure-ftpd's and vsftpd's plain LIST hide dot files; "-a" shows them. Some servers
            # (pyftpdlib) take "LIST -a /dir" for a path named "-a /dir", but all accept it alone.
            await self.command("CWD " + remote, "2xx")
            channel = await self.open_data("LIST -a")
        with self._transfer(channel):
            data = await channel.read_all()
            final = await channel.finish()
        if "truncat" in final.lower():  # pure-ftpd -L, for one: never infer "absent" from this
            logger.warning("the server truncated the listing of %s: %s", remote, final)
        return parse_listing(data, mlsd=self._mlsd, where=remote)

    async def lookup(self, remote: str) -> RemoteEntry | None:
        name = posixpath.basename(remote.rstrip("/"))
        if self._mlst:
            try:
                _, info = await self.command("MLST " + remote, "2xx")
            except aioftp.StatusCodeError as exc:
                if _reply_code(exc).startswith("4"):
                    raise
                if _reply_code(exc) not in ("500", "502"):
                    return None
                self._mlst = False
            else:
                facts_line = next((line[1:] for line in info[1:] if line.startswith(" ")), "")
                _, facts = _parse_facts(facts_line)
                kind = facts.get("type", "").lower()
                if kind in ("cdir", "pdir"):
                    facts["type"] = "dir"
                return _entry_from_facts(name, facts)
        if remote.rstrip("/") == self.root.rstrip("/"):
            return RemoteEntry(name=name, type="dir")
        parent = posixpath.dirname(remote.rstrip("/")) or "/"
        try:
            entries = await self.listing(parent)
        except aioftp.StatusCodeError as exc:
            if _reply_code(exc).startswith("5"):
                return None
            raise
        return next((entry for entry in entries if entry.name == name), None)

    async def size(self, remote: str) -> int | None:
        if self._size:
            try:
                _, info = await self.command("SIZE " + remote, "213")
                text = _reply_text(info)
                if text.isdigit():
                    return int(text)
            except aioftp.StatusCodeError as exc:
                code = _reply_code(exc)
                if code.startswith("4"):
                    raise
                if code not in ("500", "502"):
                    return None
                self._size = False
        entry = await self.lookup(remote)
        return entry.size if entry is not None else None

    async def folder_exists(self, remote: str) -> bool:
        if self._mlst:
            entry = await self.lookup(remote)
            return entry is not None and entry.type == "dir"
        try:
            await self.command("CWD " + remote, "2xx")
        except aioftp.StatusCodeError as exc:
            if _reply_code(exc).startswith("5"):
                return False
            raise
        return True

    async def _mkd(self, remote: str) -> aioftp.StatusCodeError | None:
        try:
            await self.command("MKD " + remote, "257")
        except aioftp.StatusCodeError as exc:
            if _reply_code(exc).startswith("5"):
                return exc  # exists, or not allowed: the caller looks
            raise
        return None

    async def makedirs(self, base: str, relative: str) -> None:
        if not relative:
            return
        full = _join(base, relative)
        if await self._mkd(full) is None or await self.folder_exists(full):
            return  # one round trip when the parent exists, two when all exist
        current = base
        for part in relative.split("/"):
            current = _join(current, part)
            refusal = await self._mkd(current)
            if refusal is not None and not await self.folder_exists(current):
                raise _reply_error(refusal, f"creating the folder {current}")

    async def remove_tree(self, remote: str) -> None:
        entry = await self.lookup(remote)
        if entry is None:
            return
        if entry.type != "dir":
            await self.command("DELE " + remote, "2xx")
            return
        await self._remove_dir(remote)

    async def _remove_dir(self, remote: str) -> None:
        previous: list[str] = []
        while True:
            # Listings can be capped (pure-ftpd: 2,000 entries): list again until empty.
            entries = await self.listing(remote)
            names = sorted(entry.name for entry in entries)
            if not entries or names == previous:
                break
            previous = names
            for child in entries:
                path = _join(remote, child.name)
                if child.type == "dir":
                    await self._remove_dir(path)  # the listing said so: no lookup
                else:
                    await self.command("DELE " + path, "2xx")
        await self.command("RMD " + remote, "2xx")

    async def store(self, remote: str, source: BinaryIO, size: int, progress: _UploadProgress) -> None:
        offset = progress.offset
        if offset >= size and offset:
            return  # everything arrived before the connection dropped
        if offset:
            try:
                if "REST" not in self.features and self.features:
                    channel = await self.open_data("APPE " + remote)
                else:
                    channel = await self.open_data("STOR " + remote, offset=offset)
            except ResumeRefused as refused:
                # ProFTPD's stock AllowStoreRestart off answers "451 Append/Restart not
                # permitted" forever: asking again cannot help, sending it all again does.
                logger.warning(
                    "the server will not resume the upload of %s (%s): sending it again from the start",
                    remote,
                    refused.message,
                )
                progress.offset = offset = 0
                progress.resume_refused = True
                channel = await self.open_data("STOR " + remote)
        else:
            channel = await self.open_data("STOR " + remote)
        progress.started = True
        with self._transfer(channel):
            source.seek(offset)
            while block := source.read(BLOCK_SIZE):
                await channel.write(block)
                progress.sent += len(block)
            await channel.finish()

    async def read_range(self, remote: str, offset: int, length: int) -> bytes:
        channel = await self.open_data("RETR " + remote, offset=offset)
        chunks: list[bytes] = []
        got = 0
        with self._transfer(channel):
            while got < length:
                chunk = await channel.read(min(BLOCK_SIZE, length - got))
                if not chunk:
                    await channel.finish()
                    return b"".join(chunks)
                chunks.append(chunk)
                got += len(chunk)
            await self.abort_transfer(channel)
        return b"".join(chunks)


async def _probe_fingerprint(settings: FtpSettings) -> str:
    """The certificate's fingerprint from a second, unverified handshake (for the pin hint)."""
    probe = _Control(settings)
    try:
        await probe.connect(settings.host, settings.port)
        await probe.command("AUTH TLS", "234")
        await asyncio.wait_for(
            probe.stream.start_tls(_tls_context(True), server_hostname=settings.host), probe.timeout
        )
        return _peer_fingerprint(probe.stream.writer) or ""
    except Exception:
        logger.debug("could not read the certificate of %s", probe.where, exc_info=True)
        return ""
    finally:
        probe.close()


async def _guarded(control: _Control, operation: Awaitable[T], what: str) -> T:
    """Run one protocol step; translate whatever it raises into an FtpError."""
    try:
        return await operation
    except FtpError:
        raise
    except aioftp.StatusCodeError as exc:
        if _reply_code(exc) == "421":  # the server is closing the session
            control.broken = True
        raise _reply_error(exc, what) from None
    except TimeoutError:
        control.broken = True
        raise FtpTimeout(
            f"the server stopped answering while {what} (nothing for {control.timeout:g} s)",
            hint="The server or the network may be overloaded; the timeout is a destination setting.",
        ) from None
    except (OSError, EOFError, ssl.SSLError) as exc:
        control.broken = True
        raise TransientError(f"the connection to {control.where} was lost while {what}: {exc}") from None
    except (ValueError, IndexError) as exc:  # a reply we could not parse (PASV, EPSV, PWD...)
        control.broken = True
        raise PermanentError(f"the server sent an unexpected reply while {what}: {exc}") from None


# --- the synchronous API -------------------------------------------------------------------------


class _UploadWriter:
    """What `open_upload` yields: buffered writes into one STOR."""

    def __init__(
        self, connection: FtpConnection, control: _Control, channel: _DataChannel, what: str
    ) -> None:
        self._connection = connection
        self._control = control
        self._channel = channel
        self._what = what
        self._buffer = bytearray()
        self.bytes_written = 0
        self.stored: int | None = None

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.bytes_written += len(data)
        if len(self._buffer) >= BLOCK_SIZE:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            block, self._buffer = self._buffer, bytearray()  # handed over, not copied
            self._connection._run(self._control, self._channel.write(block), self._what)


class FtpConnection:
    """One logged-in FTP control connection; see RemoteStore for the operations.

    Opening it connects and logs in right away (retrying transient failures up to
    `settings.retries` times), so `root`, `system`, `features` and `fingerprint` are set.
    A dropped connection is reopened by the next operation.
    """

    def __init__(
        self,
        settings: FtpSettings,
        *,
        lease: Lease | None = None,
        create_root: bool = False,
        single_attempt: bool = False,
    ) -> None:
        self.settings = settings
        self.lease = lease
        self.root = ""
        self.system = ""
        self.features: frozenset[str] = frozenset()
        self.fingerprint: str | None = None
        self._directory = _clean_directory(settings.directory)
        self._create_root = create_root
        self._single_attempt = single_attempt
        self._resume_refused = False  # the server refused to resume an upload: never ask again
        self._control: _Control | None = None
        self._closed = False
        self._loop = asyncio.new_event_loop()
        try:
            self._with_retries("connecting", self._connected)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        user = f"{self.settings.username}@" if self.settings.username else ""
        return f"<FtpConnection ftp://{user}{self.settings.host}:{self.settings.port}{self.root}>"

    def __enter__(self) -> FtpConnection:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- plumbing

    def _connected(self) -> _Control:
        if self._closed:
            raise FtpError("this FTP connection is closed")
        if self._control is not None and not self._control.broken:
            return self._control
        self._drop()
        control = _Control(self.settings)
        try:
            self._run(control, control.open(self._directory, create_root=self._create_root), "connecting")
        except BaseException:
            control.close()
            raise
        if self._control is None and not self.root:
            logger.debug("connected to %s (%s), root %s", control.where, control.system, control.root)
        self._control = control
        self.root = control.root
        self.system = control.system
        self.features = control.features
        self.fingerprint = control.fingerprint
        return control

    def _drop(self) -> None:
        control, self._control = self._control, None
        if control is not None:
            control.close()

    def _run(self, control: _Control, operation: Awaitable[T], what: str) -> T:
        try:
            return self._loop.run_until_complete(_guarded(control, operation, what))
        except FtpError as exc:
            raise _scrub(exc, self.settings.password) from None

    def _may_retry(self, exc: FtpError, attempt: int) -> bool:
        if self._single_attempt or not _is_transient(exc):
            return False
        return self.settings.retries == 0 or attempt <= self.settings.retries

    def _pause(self, exc: FtpError, attempt: int, what: str) -> None:
        if self._control is not None and self._control.broken:
            self._drop()
        delay = _retry_delay(attempt)
        limit = self.settings.retries or "unlimited"
        logger.warning(
            "FTP %s failed (%s); retry %d of %s in %.1f s", what, exc.message, attempt, limit, delay
        )
        time.sleep(delay)

    def _with_retries(self, what: str, action: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return action()
            except FtpError as exc:
                attempt += 1
                if not self._may_retry(exc, attempt):
                    raise
                self._pause(exc, attempt, what)

    def _call(self, what: str, operation: Callable[[_Control], Awaitable[T]]) -> T:
        def attempt() -> T:
            control = self._connected()
            return self._run(control, operation(control), what)

        return self._with_retries(what, attempt)

    def _remote(self, path: str) -> str:
        return _join(self.root, clean_path(path))

    # -- RemoteStore

    def listdir(self, path: str = "") -> list[RemoteEntry]:
        remote = self._remote(path)
        return self._call(f"listing {remote}", lambda control: control.listing(remote))

    def stat(self, path: str) -> RemoteEntry | None:
        remote = self._remote(path)
        return self._call(f"looking up {remote}", lambda control: control.lookup(remote))

    def size(self, path: str) -> int | None:
        remote = self._remote(path)
        return self._call(f"asking the size of {remote}", lambda control: control.size(remote))

    def makedirs(self, path: str) -> None:
        relative = clean_path(path)
        self._call(f"creating the folder {relative}", lambda control: control.makedirs(self.root, relative))

    def rename(self, src: str, dst: str) -> None:
        source, target = self._remote(src), self._remote(dst)

        async def rename(control: _Control) -> None:
            await control.command("RNFR " + source, "350")
            await control.command("RNTO " + target, "2xx")

        self._call(f"renaming {source} to {target}", rename)

    def remove(self, path: str) -> None:
        remote = self._remote(path)
        self._call(f"deleting {remote}", lambda control: control.command("DELE " + remote, "2xx"))

    def rmdir(self, path: str) -> None:
        remote = self._remote(path)
        self._call(f"removing the folder {remote}", lambda control: control.command("RMD " + remote, "2xx"))

    def remove_tree(self, path: str) -> None:
        """Delete a file or a folder with everything in it; a missing path is not an error."""
        relative = clean_path(path)
        if not relative:
            raise PathRefused("refusing to remove the destination directory itself")
        remote = _join(self.root, relative)
        self._call(f"removing {remote}", lambda control: control.remove_tree(remote))

    def upload_file(self, path: str, source: BinaryIO) -> int | None:
        """Upload all of `source` (seekable, read from offset 0); returns the size the server
        reports for the stored file (None when the server cannot say).

        A dropped connection or transient failure is retried: the upload resumes where the
        server's copy ends when that copy is provably this upload's (else it starts over), and
        the server's final size, when it reports one, must equal the local size. A server that
        will not resume (REST or APPE refused) gets the whole file again, from byte 0.
        """
        remote = self._remote(path)
        what = f"uploading {remote}"
        size = source.seek(0, io.SEEK_END)
        attempt = 0
        last: _UploadProgress | None = None  # the latest attempt that got as far as choosing its offset
        while True:
            progress = _UploadProgress()
            try:
                control = self._connected()
                if last is not None:
                    progress.offset = self._resume_offset(control, remote, source, size, last)
                progress.decided = True
                self._run(control, control.store(remote, source, size, progress), what)
                self._resume_refused = self._resume_refused or progress.resume_refused
                stored = self._run(control, control.size(remote), f"checking the size of {remote}")
                if stored is not None and stored != size:
                    progress.offset, progress.started = 0, False  # not resumable: start over
                    raise TransientError(
                        f"after uploading {remote} the server has {stored} bytes, not {size}"
                    )
                return stored
            except FtpError as exc:
                self._resume_refused = self._resume_refused or progress.resume_refused
                attempt += 1
                if not self._may_retry(exc, attempt):
                    raise
                if progress.decided:
                    last = progress
                self._pause(exc, attempt, what)

    def _resume_offset(
        self, control: _Control, remote: str, source: BinaryIO, size: int, last: _UploadProgress
    ) -> int:
        if not last.started:
            return last.offset  # the server never accepted that attempt: the remote copy is as before
        if self._resume_refused:
            return 0
        stored = self._run(control, control.size(remote), f"checking the size of {remote}") or 0
        if stored <= 0 or stored > min(size, last.offset + last.sent):
            return 0
        # A server that uploads into a hidden temporary file (pure-ftpd -0, ProFTPD HiddenStores)
        # leaves the previous version in place: compare the tail before trusting the prefix.
        check = min(RESUME_CHECK_BYTES, stored)
        try:
            remote_tail = self._run(
                control, control.read_range(remote, stored - check, check), f"checking the partial {remote}"
            )
        except (PermanentError, TransientError):
            if control.broken:
                raise  # the connection dropped: the next attempt looks again
            # A server that refuses REST for RETR will not resume a STOR either.
            logger.warning("could not read back the partial upload of %s: starting over", remote)
            return 0
        source.seek(stored - check)
        if remote_tail != source.read(check):
            logger.warning("partial upload of %s does not match the local file: starting over", remote)
            return 0
        logger.info("resuming the upload of %s at byte %d of %d", remote, stored, size)
        return stored

    @contextlib.contextmanager
    def open_upload(self, path: str) -> Iterator[_UploadWriter]:
        """Stream into one STOR (for non-seekable sources); on failure it raises, redo the upload."""
        remote = self._remote(path)
        what = f"uploading {remote}"
        channel = self._call(what, lambda control: control.open_data("STOR " + remote))
        control = channel.control
        writer = _UploadWriter(self, control, channel, what)
        try:
            yield writer
            writer.flush()
            self._run(control, channel.finish(), what)
        except BaseException:
            self._abandon_upload(control, channel, remote)
            raise
        stored = self._run(control, control.size(remote), f"checking the size of {remote}")
        if stored is not None and stored != writer.bytes_written:
            raise TransientError(
                f"after uploading {remote} the server has {stored} bytes, not {writer.bytes_written}"
            )
        writer.stored = stored

    def _abandon_upload(self, control: _Control, channel: _DataChannel, remote: str) -> None:
        channel.abort()
        if control.broken or self._loop.is_running():
            control.broken = True
            return
        try:
            self._run(control, control.abort_transfer(channel), "abandoning an upload")
            self._run(control, control.command("DELE " + remote, "2xx"), "deleting a partial upload")
        except FtpError:
            logger.info("could not delete the partial upload %s", remote)

    def download(
        self, path: str, *, offset: int = 0, length: int | None = None
    ) -> Generator[bytes, None, None]:
        """The file's bytes from `offset`, `length` of them (None: to the end), in chunks ≤ 1 MiB."""
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must not be negative")
        return self._download(self._remote(path), offset, length)

    def _download(self, remote: str, offset: int, length: int | None) -> Generator[bytes, None, None]:
        what = f"downloading {remote}"
        position, remaining = offset, length
        attempt = 0
        while remaining is None or remaining > 0:
            control: _Control | None = None
            channel: _DataChannel | None = None
            try:
                control = self._connected()
                channel = self._run(control, control.open_data("RETR " + remote, offset=position), what)
                while True:
                    want = BLOCK_SIZE if remaining is None else min(BLOCK_SIZE, remaining)
                    chunk = self._run(control, channel.read(want), what)
                    if not chunk:
                        self._run(control, channel.finish(), what)
                        channel = None
                        return
                    position += len(chunk)
                    if remaining is not None:
                        remaining -= len(chunk)
                    if remaining == 0:  # all wanted: stop the transfer before handing out the chunk
                        self._stop_download(control, channel)
                        channel = None
                    yield chunk
                    if channel is None:
                        return
            except FtpError as exc:
                if channel is not None:
                    channel.abort()
                    channel = None
                    if control is not None:
                        control.broken = True
                attempt += 1
                if not self._may_retry(exc, attempt):
                    raise
                self._pause(exc, attempt, what)
            finally:
                if channel is not None and control is not None:  # the consumer stopped early
                    self._stop_download(control, channel)

    def _stop_download(self, control: _Control, channel: _DataChannel) -> None:
        """End a transfer early; never raises (a failure only costs a reconnect later)."""
        if self._loop.is_running() or self._closed:
            channel.abort()
            control.broken = True
            return
        try:
            self._run(control, control.abort_transfer(channel), "stopping a download")
        except FtpError:
            control.broken = True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        control, self._control = self._control, None
        try:
            if control is not None:
                if not control.broken and not self._loop.is_running():
                    self._loop.run_until_complete(control.quit_quietly())
                control.close()
            if not self._loop.is_running():
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
                self._loop.run_until_complete(self._loop.shutdown_default_executor())
                self._loop.close()
        finally:
            if self.lease is not None:
                self.lease.release()


def connect_once(
    settings: FtpSettings, *, create_root: bool = False, lease: Lease | None = None
) -> FtpConnection:
    """One connection attempt, no retries: what "Validate" on the destination form uses.
    `lease` (released when the connection closes) is its slot under the destination's cap."""
    try:
        return FtpConnection(settings, create_root=create_root, single_attempt=True, lease=lease)
    except BaseException:
        if lease is not None:
            lease.release()
        raise


# --- sessions: a few connections reused for the life of a task ----------------------------------


class FtpSession:
    """Up to `max_connections` FtpConnections (None/0: unlimited), opened lazily and reused.

    With `lease_key`, every opened connection first takes a lease from Redis, so that all
    workers together keep at most `lease_limit` (default: `max_connections`) connections to
    the destination. `with session.connection() as conn:` borrows one, waiting until one is
    free; closing the session closes them all and releases their leases.
    """

    def __init__(
        self,
        settings: FtpSettings,
        *,
        max_connections: int | None = None,
        lease_key: str | None = None,
        redis_url: str | None = None,
        lease_limit: int | None = None,
        lease_timeout: float | None = None,
        lease_ttl: float = 60.0,
        create_root: bool = False,
        holder: str | None = None,
    ) -> None:
        self.settings = settings
        self.max_connections = max_connections or 0
        self.lease_timeout = lease_timeout
        self.holder = holder  # None: the holding_for() description where the session opens
        self._wait_notice: Callable[[str], None] | None = None
        self._wait_noticed = False
        self._create_root = create_root
        self._cond = threading.Condition()
        self._idle: list[FtpConnection] = []
        self._open: list[FtpConnection] = []
        self._opening = 0
        self._closed = False
        self._leases: ConnectionLeases | None = None
        limit = lease_limit if lease_limit is not None else self.max_connections
        if lease_key and limit:
            from destinations.ftp.leases import ConnectionLeases, current_holder, current_wait_notice

            self._leases = ConnectionLeases.from_url(
                redis_url or _default_redis_url(), lease_key, limit, ttl=lease_ttl
            )
            # Connections are opened by the task's transfer threads too, which do not
            # inherit its context: take the description now.
            if self.holder is None:
                self.holder = current_holder()
            self._wait_notice = current_wait_notice()

    def __repr__(self) -> str:
        return f"<FtpSession {self.settings.host}:{self.settings.port} {len(self._open)} open>"

    def __enter__(self) -> FtpSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def connection(self) -> Iterator[FtpConnection]:
        connection = self._borrow()
        try:
            yield connection
        finally:
            self._give_back(connection)

    def _borrow(self) -> FtpConnection:
        lease = None
        started = time.monotonic()
        deadline = None if self.lease_timeout is None else started + self.lease_timeout
        poll = LEASE_POLL_MIN
        with self._cond:
            while True:
                if self._closed:
                    raise FtpError("this FTP session is closed")
                if self._idle:
                    return self._idle.pop()
                wait: float | None = None
                if not self.max_connections or len(self._open) + self._opening < self.max_connections:
                    if self._leases is None:
                        break
                    # Poll for a lease here rather than block in acquire(): a connection that
                    # another thread of this session gives back must wake us. Otherwise two
                    # workers, each holding one idle lease and waiting for a second, deadlock.
                    lease = self._leases.try_acquire(self.holder)
                    if lease is not None:
                        break
                    if deadline is not None and time.monotonic() >= deadline:
                        from destinations.ftp.leases import BUSY_HINT

                        raise DestinationBusy(self._leases.busy_message(self.lease_timeout or 0.0), BUSY_HINT)
                    if time.monotonic() - started >= self.settings.timeout:
                        self._notice_waiting()
                    wait = random.uniform(poll / 2, poll)
                    poll = min(LEASE_POLL_MAX, poll * 2)
                self._cond.wait(timeout=wait)
            self._opening += 1
        try:
            connection = FtpConnection(self.settings, lease=lease, create_root=self._create_root)
        except BaseException:
            if lease is not None:
                lease.release()
            with self._cond:
                self._opening -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._opening -= 1
            self._open.append(connection)
        return connection

    def _notice_waiting(self) -> None:
        """Tell the work that waits (its queue item's log), once, who holds the connections:
        a restore queued behind a long backup should not look stuck."""
        if self._wait_noticed or self._wait_notice is None or self._leases is None:
            return
        self._wait_noticed = True
        try:
            self._wait_notice(f"Waiting for a connection: {self._leases.in_use_message()}.")
        except Exception:
            logger.warning("could not report the wait for a connection lease", exc_info=True)

    def _give_back(self, connection: FtpConnection) -> None:
        with self._cond:
            discard = self._closed or connection._closed
            if discard:
                with contextlib.suppress(ValueError):
                    self._open.remove(connection)
            else:
                self._idle.append(connection)
            self._cond.notify()
        if discard:
            connection.close()

    def close(self) -> None:
        """Close every idle connection now, and borrowed ones when they come back."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            for connection in idle:
                self._open.remove(connection)
            self._cond.notify_all()
        for connection in idle:
            try:
                connection.close()
            except Exception:
                logger.warning("closing an FTP connection failed", exc_info=True)


def _default_redis_url() -> str:
    from django.conf import settings

    return str(settings.REDIS_URL)
