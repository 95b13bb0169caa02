"""Handler mixins for `InProcessFtpServer`, each staging one precise fault: a Windows SYST, a PASV
naming another address, a transient 425, a dropped transfer, refused connections, a careless
server, crafted listings, a slow link.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from tests.support.ftp_servers.inprocess import ServerState


class WindowsSyst:
    """SYST answers like an IIS FTP server."""

    def ftp_SYST(self, line: str) -> None:
        self.respond("215 Windows_NT")  # type: ignore[attr-defined]


class NatPasv:
    """EPSV refused; PASV names an unroutable address (a server behind NAT, misconfigured)."""

    masquerade_address = "10.255.255.1"

    def ftp_EPSV(self, line: str) -> None:
        self.respond("502 EPSV not implemented.")  # type: ignore[attr-defined]


class Transient425:
    """The first `faults` (default 1) STOR/RETR commands are refused like pure-ftpd's port race."""

    state: ServerState
    options: dict[str, Any]
    data_channel: Any

    def _refuse(self) -> bool:
        with self.state.lock:
            if self.state.faults >= self.options.get("faults", 1):
                return False
            self.state.faults += 1
        self._shutdown_connecting_dtp()  # type: ignore[attr-defined]
        if self.data_channel is not None:
            self.data_channel.close()
            self.data_channel = None
        self._restart_position = 0
        self.respond("425 Unable to identify the local data socket: Address already in use")  # type: ignore[attr-defined]
        return True

    def ftp_STOR(self, file: str, mode: str = "w") -> Any:
        if not self._refuse():
            return super().ftp_STOR(file, mode)  # type: ignore[misc]
        return None

    def ftp_RETR(self, file: str) -> Any:
        if not self._refuse():
            return super().ftp_RETR(file)  # type: ignore[misc]
        return None


class DropMidTransfer:
    """Drops the first upload and/or download after `drop_after` bytes.

    options: drop_after (bytes, default 300_000), drop ("data": close the data connection with
    a 426; "control": close the whole session), commands (default {"STOR", "RETR", "APPE"}),
    faults (how many transfers to drop, default 1), corrupt (overwrite the partial file with
    random bytes, as if the server kept a previous version).
    """

    state: ServerState
    options: dict[str, Any]
    close: Callable[[], None]  # FTPHandler's
    use_sendfile = False  # sendfile() would bypass send(), where downloads are cut

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        outer = self
        base = self.dtp_handler  # type: ignore[has-type]

        class DroppingDTP(base):  # type: ignore[misc, valid-type]
            def _check(self) -> None:
                moved = self.tot_bytes_received if self.receive else self.tot_bytes_sent
                commands = outer.options.get("commands", {"STOR", "RETR", "APPE"})
                if self.cmd in commands and moved >= outer.options.get("drop_after", 300_000):
                    with outer.state.lock:
                        if outer.state.faults >= outer.options.get("faults", 1):
                            return
                        outer.state.faults += 1
                    self.ioloop.call_later(0, self._drop)

            def _drop(self) -> None:
                path = self.file_obj.name if self.file_obj is not None else None
                if outer.options.get("drop", "data") == "control":
                    outer.close()
                else:
                    self._resp = (
                        "426 Connection closed; transfer aborted.",
                        logging.getLogger(__name__).info,
                    )
                    self.close()
                if outer.options.get("corrupt") and path:
                    # what a server uploading into a hidden temp file leaves: other bytes, same name
                    size = os.path.getsize(path)
                    with open(path, "wb") as stale:
                        stale.write(os.urandom(size))

            def handle_read(self) -> None:
                super().handle_read()
                self._check()

            handle_read_event = handle_read  # pyftpdlib aliases the base method at class level

            def send(self, data: bytes) -> int:
                sent = int(super().send(data))
                self._check()
                return sent

        self.dtp_handler = DroppingDTP


class RefuseFirstConnections:
    """The first `faults` (default 1) connections get `421 Too many connections` and are closed."""

    state: ServerState
    options: dict[str, Any]

    def handle(self) -> None:
        with self.state.lock:
            refuse = self.state.faults < self.options.get("faults", 1)
            if refuse:
                self.state.faults += 1
        if not refuse:
            super().handle()  # type: ignore[misc]
            return
        self.on_connect()  # type: ignore[attr-defined]
        self.respond("421 Too many connections (2) from this IP")  # type: ignore[attr-defined]
        self.close_when_done()  # type: ignore[attr-defined]


class EchoingPass:
    """Refuses every password and echoes it back in the reply (a careless server)."""

    def ftp_PASS(self, line: str) -> None:
        self.respond(f"530 Password {line} is not valid for this user.")  # type: ignore[attr-defined]


class SilentAfterCut:
    """Never answers once the client cut a transfer short (no 426, no reply to its ABOR): the
    client must not hang."""

    def respond(self, resp: str, logfun: Any = None) -> None:
        if resp.startswith("426"):
            return
        super().respond(resp)  # type: ignore[misc]

    def ftp_ABOR(self, line: str) -> None:
        dtp = getattr(self, "data_channel", None)
        if dtp is not None:
            dtp.close()  # the transfer stops; the server says nothing


class NoEprt:
    """EPRT not understood: active mode must fall back to PORT."""

    def ftp_EPRT(self, line: str) -> None:
        self.respond("500 Command EPRT not understood.")  # type: ignore[attr-defined]


class CraftedListing:
    """MLSD/LIST answer with `options["lines"]` verbatim; options["mlsd"]=False hides MLSD."""

    options: dict[str, Any]

    def ftp_FEAT(self, line: str) -> None:
        if self.options.get("mlsd", True):
            super().ftp_FEAT(line)  # type: ignore[misc]
            return
        self.push("211-Features supported:\r\n EPRT\r\n EPSV\r\n SIZE\r\n REST STREAM\r\n UTF8\r\n")  # type: ignore[attr-defined]
        self.respond("211 End FEAT.")  # type: ignore[attr-defined]

    def _crafted(self, command: str) -> None:
        data = "".join(line + "\r\n" for line in self.options.get("lines", []))
        self.push_dtp_data(data.encode("utf-8", "surrogateescape"), cmd=command)  # type: ignore[attr-defined]

    def ftp_MLSD(self, path: str) -> Any:
        if not self.options.get("mlsd", True):
            self.respond("500 Command MLSD not understood.")  # type: ignore[attr-defined]
            return None
        self._crafted("MLSD")
        return path

    def ftp_LIST(self, path: str) -> Any:
        self._crafted("LIST")
        return path


class Throttled:
    """Uploads crawl at `read_limit` bytes per second (and downloads at `write_limit`), as over
    a slow link: a run takes a while, and socket buffers hold seconds of data."""

    options: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from pyftpdlib.handlers import ThrottledDTPHandler

        limits = {
            "read_limit": self.options.get("read_limit", 1_000_000),
            "write_limit": self.options.get("write_limit", 0),
        }
        rcvbuf = self.options.get("rcvbuf")

        class ThrottledDTP(ThrottledDTPHandler):
            def __init__(self, sock: Any, cmd_channel: Any) -> None:
                super().__init__(sock, cmd_channel)
                if rcvbuf:
                    # A small receive buffer keeps the backlog on the sender's side, as on a
                    # slow WAN link (not in the receiving application).
                    self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)

        for name, value in limits.items():
            setattr(ThrottledDTP, name, value)
        self.dtp_handler = ThrottledDTP
