"""In-process servers: pyftpdlib on 127.0.0.1 in a background thread (`InProcessFtpServer`, with a
fault-staging handler mixin from `faults`), and a silent TCP listener that plays a server that
never sends its banner.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from destinations.ftp import FtpSettings
from tests.support.ftp_servers.common import PeerUnavailable, make_self_signed_cert

# --- in-process servers (pyftpdlib) ------------------------------------------------------------


def _pyftpdlib() -> Any:
    try:
        with warnings.catch_warnings():  # it is built on asyncore/asynchat, deprecated in 3.11
            warnings.simplefilter("ignore", DeprecationWarning)
            import pyftpdlib.handlers
            import pyftpdlib.servers
    except ImportError as exc:  # pragma: no cover - a dev dependency
        raise PeerUnavailable("pyftpdlib is not installed") from exc
    return pyftpdlib


@dataclass
class ServerState:
    """What a fault handler observed, shared between the server thread and the test."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    connections: int = 0  # control connections accepted
    current: int = 0  # control connections open now
    max_concurrent: int = 0
    login_attempts: int = 0  # PASS commands
    faults: int = 0  # faults staged so far
    commands: list[str] = field(default_factory=list)

    def connected(self) -> None:
        with self.lock:
            self.connections += 1
            self.current += 1
            self.max_concurrent = max(self.max_concurrent, self.current)

    def disconnected(self) -> None:
        with self.lock:
            self.current -= 1


def _handler_base(tls: bool) -> type:
    lib = _pyftpdlib()
    return lib.handlers.TLS_FTPHandler if tls else lib.handlers.FTPHandler


class InProcessFtpServer:
    """pyftpdlib on 127.0.0.1 in a background thread, with a fault-staging handler mixin.

    `handler_mixin` is a class whose methods override pyftpdlib's FTPHandler; it can read
    `self.state` (a ServerState) and `self.options` (the keyword arguments given here).
    """

    def __init__(
        self,
        handler_mixin: type | None = None,
        *,
        tls: bool = False,
        user: str = "alice",
        password: str | None = None,
        **options: Any,
    ) -> None:
        self.handler_mixin = handler_mixin
        self.tls = tls
        self.user = user
        self.password = password or secrets.token_urlsafe(12)
        self.options = options
        self.state = ServerState()
        self.host = "127.0.0.1"
        self.port = 0
        self.fingerprint = ""
        self._tmp: Path | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def root(self) -> Path:
        if self._tmp is None:
            raise RuntimeError("the server is not started")
        return self._tmp / "home"

    def settings(self, **overrides: Any) -> FtpSettings:
        base = FtpSettings(
            host=self.host, port=self.port, username=self.user, password=self.password, timeout=3.0, retries=2
        )
        return replace(base, **overrides)

    def start(self) -> InProcessFtpServer:
        lib = _pyftpdlib()
        from pyftpdlib.authorizers import DummyAuthorizer

        self._tmp = Path(tempfile.mkdtemp(prefix="ftpfault-"))
        self.root.mkdir()
        authorizer = DummyAuthorizer()
        authorizer.add_user(self.user, self.password, str(self.root), perm="elradfmwMT")
        attrs: dict[str, Any] = {
            "authorizer": authorizer,
            "state": self.state,
            "options": self.options,
            "auth_failed_timeout": 0,
            "permit_foreign_addresses": False,
            "banner": "test server ready",
        }
        if self.tls:
            cert = make_self_signed_cert(self._tmp)
            self.fingerprint = cert.fingerprint
            attrs["certfile"] = str(cert.pem)
            attrs["tls_control_required"] = bool(self.options.get("tls_required"))
            attrs["tls_data_required"] = bool(self.options.get("tls_required"))
        bases = (self.handler_mixin, _CountingMixin) if self.handler_mixin else (_CountingMixin,)
        handler = type("FaultHandler", (*bases, _handler_base(self.tls)), attrs)
        self._server = lib.servers.FTPServer((self.host, 0), handler)
        self.port = int(self._server.address[1])
        self._thread = threading.Thread(target=self._serve, name=f"ftp-fault-{self.port}", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._server.ioloop.loop(timeout=0.05, blocking=False)
        self._server.close_all()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> InProcessFtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _CountingMixin:
    """Counts control connections, concurrency and login attempts on every fault server."""

    state: ServerState

    def on_connect(self) -> None:
        self.state.connected()

    def on_disconnect(self) -> None:
        self.state.disconnected()

    def ftp_PASS(self, line: str) -> Any:
        with self.state.lock:
            self.state.login_attempts += 1
        return super().ftp_PASS(line)  # type: ignore[misc]

    def pre_process_command(self, line: str, cmd: str, arg: str) -> Any:
        with self.state.lock:
            self.state.commands.append("PASS ***" if cmd == "PASS" else line)
        return super().pre_process_command(line, cmd, arg)  # type: ignore[misc]


# --- a server that never speaks ------------------------------------------------------------------


class SilentServer:
    """Accepts TCP connections and never sends a byte (a firewall or a hung daemon)."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.accepted = 0
        self._sock: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def settings(self, **overrides: Any) -> FtpSettings:
        return replace(FtpSettings(host=self.host, port=self.port, username="u", password="p"), **overrides)

    def start(self) -> SilentServer:
        self._sock = socket.socket()
        self._sock.bind((self.host, 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.port = int(self._sock.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, name=f"ftp-silent-{self.port}", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._conns.append(conn)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for conn in self._conns:
            conn.close()
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> SilentServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
