"""One FTP control connection, on asyncio: connecting, explicit TLS, the login, and the
commands that connection.FtpConnection runs on it (the data connections they open come from
its base class, transfers._DataConnections)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
import socket
import ssl
from dataclasses import dataclass
from typing import BinaryIO

import aioftp
from aioftp.common import SSLSessionBoundContext

from .errors import (
    _MENTIONS_TLS,
    CertificateMismatch,
    CertificateUntrusted,
    ConnectFailed,
    DirectoryMissing,
    FtpTimeout,
    LoginFailed,
    ResumeRefused,
    TlsFailed,
    TlsRequired,
    TransientError,
    UnsupportedServer,
    _reply_code,
    _reply_error,
    _reply_text,
)
from .interface import FtpSettings, RemoteEntry
from .parsing import _entry_from_facts, _parse_facts, parse_listing
from .paths import _CONTROL_CHARS, _join
from .tls import _peer_fingerprint, _tls_context, normalise_fingerprint
from .transfers import BLOCK_SIZE, _DataConnections

logger = logging.getLogger(__name__)


@dataclass
class _UploadProgress:
    offset: int = 0  # where this attempt started in the file
    started: bool = False  # the server accepted STOR/APPE: what lies remote is ours from here
    sent: int = 0  # bytes handed to the data connection by this attempt
    decided: bool = False  # the offset was chosen (a failure before that changed nothing remote)
    resume_refused: bool = False  # the server refused to resume: later attempts start from 0


class _Control(_DataConnections):
    """aioftp's control connection, plus what aioftp lacks (see the package docstring)."""

    def __init__(self, settings: FtpSettings) -> None:
        super().__init__(settings)
        self.where = f"{settings.host}:{settings.port}"
        self.system = ""
        self.features: frozenset[str] = frozenset()
        self.root = "/"
        self.tcp_connected = False
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

    # -- operations

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
