"""`PureFtpd`: /usr/sbin/pure-ftpd in the foreground on 127.0.0.1 with a private puredb virtual user,
a chrooted home in a temp folder, a self-signed certificate and a random block of passive ports,
so several instances (and several test workers) never collide. `ensure_system_user` creates the
unprivileged account that owns the uploaded files.

Nothing here imports pytest: benchmark scripts use this launcher too. A missing binary or
privilege raises PeerUnavailable, which the fixtures turn into `missing_peer()`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from destinations.ftp import FtpSettings
from tests.support.ftp_servers.common import (
    PeerUnavailable,
    free_port_block,
    make_self_signed_cert,
    wait_listening,
)

PURE_FTPD = "/usr/sbin/pure-ftpd"
FTP_SYSTEM_USER = "backupsite-ftp"
PASSIVE_BLOCK = 64  # pure-ftpd caps -c at half the passive range


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
