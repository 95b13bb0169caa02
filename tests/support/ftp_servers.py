"""FTP servers for tests and benchmark scripts: a real pure-ftpd, and in-process fault servers.

`PureFtpd` runs /usr/sbin/pure-ftpd in the foreground on 127.0.0.1 with a private puredb
virtual user, a chrooted home in a temp folder, a self-signed certificate and a random block
of passive ports, so several instances (and several test workers) never collide.

The in-process servers run pyftpdlib in a background thread, with handlers that stage one
precise fault each (a Windows SYST, a PASV naming another address, a dropped connection, a
transient 425, ...). A silent TCP listener plays a server that never sends its banner.

Nothing here imports pytest: benchmark scripts use these launchers too. A missing binary or
privilege raises PeerUnavailable, which the fixtures turn into `missing_peer()`.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import ipaddress
import logging
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from destinations.ftp import FtpSettings

PURE_FTPD = "/usr/sbin/pure-ftpd"
FTP_SYSTEM_USER = "backupsite-ftp"
PASSIVE_BLOCK = 64  # pure-ftpd caps -c at half the passive range


class PeerUnavailable(RuntimeError):
    """A server binary, a library or a privilege that a launcher needs is missing."""


# --- certificates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SelfSignedCert:
    pem: Path  # private key + certificate, as pure-ftpd's -2 and pyftpdlib's certfile want it
    fingerprint: str  # "sha256:AA:BB:..."


def fingerprint_of(der: bytes) -> str:
    digest = hashlib.sha256(der).hexdigest().upper()
    return "sha256:" + ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def make_self_signed_cert(folder: Path, common_name: str = "127.0.0.1") -> SelfSignedCert:
    """An EC P-256 certificate for 127.0.0.1/localhost (EC keys are generated in ~1 ms)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = folder / "cert+key.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    pem.chmod(0o600)
    return SelfSignedCert(pem, fingerprint_of(cert.public_bytes(serialization.Encoding.DER)))


# --- ports -------------------------------------------------------------------------------------


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(size: int, low: int = 20000, high: int = 60000) -> tuple[int, int]:
    """A random block of `size` consecutive free ports (checked now; good enough for tests)."""
    for _ in range(200):
        first = random.randrange(low, high - size)
        if all(_port_is_free(port) for port in range(first, first + size)):
            return first, first + size - 1
    raise PeerUnavailable(f"no block of {size} free ports found between {low} and {high}")


def wait_listening(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise PeerUnavailable(f"the server exited with code {proc.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise PeerUnavailable(f"nothing is listening on {host}:{port} after {timeout} s")


# --- pure-ftpd ---------------------------------------------------------------------------------


def ensure_system_user(name: str = FTP_SYSTEM_USER) -> tuple[int, int]:
    """The unprivileged account that owns uploaded files; created when missing (needs root)."""
    import grp
    import pwd

    try:
        entry = pwd.getpwnam(name)
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        pass
    if os.geteuid() != 0:
        raise PeerUnavailable(f"system user {name!r} is missing and creating it needs root")
    with contextlib.suppress(KeyError):
        grp.getgrnam(name)
        raise PeerUnavailable(f"group {name!r} exists without user {name!r}: fix the accounts by hand")
    created = subprocess.run(
        [
            *("useradd", "--system", "--user-group", "--no-create-home"),
            *("--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name),
        ],
        capture_output=True,
        text=True,
    )
    try:
        entry = pwd.getpwnam(name)  # also when a parallel test worker created it first
    except KeyError:
        raise PeerUnavailable(f"could not create system user {name!r}: {created.stderr.strip()}") from None
    return entry.pw_uid, entry.pw_gid


class PureFtpd:
    """pure-ftpd on 127.0.0.1, foreground, one virtual user chrooted to `root`.

    tls: 0 = no TLS, 1 = TLS allowed (-Y 1), 2 = TLS required (-Y 2).
    """

    def __init__(
        self,
        *,
        tls: int = 1,
        show_dotfiles: bool = False,
        max_clients: int = 20,
        user: str = "backup",
        password: str | None = None,
        extra_args: tuple[str, ...] = (),
        start_timeout: float = 10.0,
    ) -> None:
        if tls not in (0, 1, 2):
            raise ValueError("tls must be 0, 1 or 2")
        self.tls = tls
        self.show_dotfiles = show_dotfiles
        self.max_clients = max_clients
        self.user = user
        self.password = password or secrets.token_urlsafe(12)
        self.extra_args = extra_args
        self.start_timeout = start_timeout
        self.host = "127.0.0.1"
        self.port = 0
        self.fingerprint = ""
        self._state: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> Path:
        """The FTP home on disk: what a client sees as "/"."""
        if self._state is None:
            raise RuntimeError("the server is not started")
        return self._state / "home"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def settings(self, **overrides: Any) -> FtpSettings:
        base = FtpSettings(
            host=self.host,
            port=self.port,
            username=self.user,
            password=self.password,
            timeout=5.0,
            retries=2,
        )
        return replace(base, **overrides)

    def _password_hash(self) -> str:
        # pure-pw would store an argon2id hash that costs ~4 s per login; a SHA-512 crypt costs ms.
        out = subprocess.run(
            ["openssl", "passwd", "-6", "-stdin"],
            input=self.password.encode(),
            capture_output=True,
            check=True,
        )
        return out.stdout.decode().strip()

    def start(self) -> PureFtpd:
        for binary in (PURE_FTPD, "/usr/bin/pure-pw"):
            if not os.path.exists(binary):
                raise PeerUnavailable(f"{binary} is not installed")
        if shutil.which("openssl") is None:
            raise PeerUnavailable("openssl is not installed")
        uid, gid = ensure_system_user()
        self._state = Path(tempfile.mkdtemp(prefix="pureftpd-"))
        self._state.chmod(0o755)
        home = self.root
        home.mkdir()
        os.chown(home, uid, gid)
        passwd = self._state / "pureftpd.passwd"
        pdb = self._state / "pureftpd.pdb"
        # account:hash:uid:gid:gecos:home:then 12 empty per-user limits (pure-pw's format)
        passwd.write_text(f"{self.user}:{self._password_hash()}:{uid}:{gid}::{home}/./" + ":" * 12 + "\n")
        passwd.chmod(0o600)
        subprocess.run(["pure-pw", "mkdb", str(pdb), "-f", str(passwd)], check=True, capture_output=True)
        args = [
            PURE_FTPD,
            "-S",
            f"{self.host},0",  # replaced below
            "-4",
            "-l",
            f"puredb:{pdb}",
            "-E",
            "-A",
            "-H",
            "-u",
            "1",
            "-c",
            str(self.max_clients),
            "-C",
            str(self.max_clients),
            "-I",
            "15",
            "-f",
            "none",
        ]
        if self.show_dotfiles:
            args.append("-D")
        if self.tls:
            cert = make_self_signed_cert(self._state)
            self.fingerprint = cert.fingerprint
            args += ["-Y", str(self.tls), "-2", str(cert.pem)]
        args += list(self.extra_args)
        last_error: Exception | None = None
        for _ in range(3):  # a port picked as free can be taken by someone else before we bind it
            self.port = _free_port()
            first, last = free_port_block(max(PASSIVE_BLOCK, 2 * self.max_clients))
            args[2] = f"{self.host},{self.port}"
            command = [*args, "-p", f"{first}:{last}"]
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            try:
                wait_listening(self.host, self.port, self.start_timeout, self._proc)
                return self
            except PeerUnavailable as exc:
                stderr = self._stop_process()
                last_error = PeerUnavailable(
                    f"pure-ftpd did not start ({exc}); command: {' '.join(command)}"
                    + (f"; stderr: {stderr}" if stderr else "")
                    + " (pure-ftpd exits with code 252 and no message on a bad flag or certificate)"
                )
        self.stop()
        raise last_error or PeerUnavailable("pure-ftpd did not start")

    def _stop_process(self) -> str:
        proc, self._proc = self._proc, None
        if proc is None:
            return ""
        if proc.poll() is None:
            # pure-ftpd forks one process per client: signal the whole group it leads
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)  # leftover per-client children
        stderr = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        return stderr

    def stop(self) -> None:
        self._stop_process()
        if self._state is not None:
            shutil.rmtree(self._state, ignore_errors=True)
            self._state = None

    def __enter__(self) -> PureFtpd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
