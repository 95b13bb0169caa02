"""Data connections, what aioftp 0.28.3 lacks most (see the package docstring).

`_DataConnections` is aioftp's client with Backupsite's timeouts and the data connections:
passive (EPSV, then PASV) or active (EPRT, then PORT); with explicit TLS, plain TCP first,
then REST and the command, the 1xx reply, and only then the TLS handshake, resuming the
control connection's TLS session. `_DataChannel` is one such connection. The control
connection itself (login, commands) is its subclass, `control._Control`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import socket
import ssl
import struct
import termios
from collections.abc import Iterator

import aioftp

from .errors import CertificateMismatch, ResumeRefused, TlsFailed, TransientError, _reply_code, _reply_text
from .interface import FtpSettings
from .tls import _peer_fingerprint

BLOCK_SIZE = 1024 * 1024


class _DataChannel:
    """One data connection, opened after the transfer command was accepted."""

    def __init__(
        self,
        control: _DataConnections,
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


# Replies read at most while a stopped transfer settles (426, 1xx statistics, 226, ...).
_SETTLE_REPLIES = 8


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


class _DataConnections(aioftp.Client):
    """aioftp's client, plus the data connections aioftp lacks; the base of `control._Control`."""

    def __init__(self, settings: FtpSettings) -> None:
        super().__init__(
            socket_timeout=settings.timeout,
            connection_timeout=settings.timeout,
            path_timeout=settings.timeout,
            encoding="utf-8",
        )
        self.settings = settings
        self.timeout = settings.timeout
        self.fingerprint: str | None = None
        self.broken = False  # the protocol state is unknown: close, and reconnect on next use
        self.peer_ip = ""
        self.local_ip = ""
        self._data_tls: ssl.SSLContext | None = None
        self._epsv = True
        self._eprt = True

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

        ABOR, then the data connection is reset. The server answers with one reply or two:
        426 (the transfer was cut) and then 225/226 for the ABOR, or 226 alone when it had
        already sent everything; pure-ftpd may add a 1xx line with its statistics. Without the
        ABOR, a server writing to a TLS data channel may not notice the reset until its own
        timeout, and the reply a reader waits for comes that much later. The first reply that
        is neither 1xx nor 426 ends the ABOR; a NOOP then marks the end of whatever else the
        server still says (its 200 is the last reply of the transfer), so a reply of this
        transfer is never read as the answer to a later command.
        """
        if channel.finished:
            channel.abort()
            return
        channel.finished = True
        await self.command("ABOR")
        channel.abort()
        for _ in range(_SETTLE_REPLIES):
            code, _ = await self.parse_response()
            if not code.startswith("1") and code != "426":
                break
        else:
            raise TransientError("the server did not answer ABOR after a transfer was stopped early")
        await self.command("NOOP")
        for _ in range(_SETTLE_REPLIES):
            code, _ = await self.parse_response()
            if code == "200":
                return
        raise TransientError("the server did not settle after a transfer was stopped early")

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
