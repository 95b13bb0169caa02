"""Validate: check at once, step by step, that backups can go to a destination.

One attempt per step, no retries, so an answer comes within about twice the timeout. Each
step says in plain language what happened and, when it failed, what to try.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import stat
from dataclasses import dataclass, field
from typing import Any

from . import ftp
from .ftp import FtpSettings
from .ftp.leases import ConnectionLeases, LeaseTimeout

PROBE_BYTES = 64 * 1024


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    hint: str = ""
    warning: bool = False


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    fingerprint: str | None = None
    pin_suggested: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok or check.warning for check in self.checks)

    def passed(self, name: str, detail: str) -> None:
        self.checks.append(Check(name, True, detail))

    def failed(self, name: str, error: ftp.FtpError | str, hint: str = "") -> None:
        if isinstance(error, ftp.FtpError):
            self.checks.append(Check(name, False, _sentence(error.message), hint or error.hint))
        else:
            self.checks.append(Check(name, False, error, hint))

    def warn(self, name: str, detail: str, hint: str = "") -> None:
        self.checks.append(Check(name, False, detail, hint, warning=True))

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [
                {"name": c.name, "ok": c.ok, "detail": c.detail, "hint": c.hint, "warning": c.warning}
                for c in self.checks
            ],
            "fingerprint": self.fingerprint,
        }


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]) if text else text


def run(
    settings: FtpSettings,
    *,
    read_only: bool = False,
    leases: ConnectionLeases | None = None,
    holder: str = "Validate",
) -> Report:
    """Every step, once. With `leases` (the destination's connection cap) the connection
    first waits up to the destination's timeout for a free slot, like any other work: a
    server that allows one session per user would refuse a second one during a backup."""
    report = Report()
    where = f"{settings.host}:{settings.port}"
    lease = None
    if leases is not None:
        try:
            lease = leases.acquire(timeout=settings.timeout, holder=holder)
        except LeaseTimeout as exc:
            report.failed("Connect", _sentence(exc.message) + ".", exc.hint)
            return report
        except Exception as exc:  # Redis unreachable: without the cap, do not connect
            report.failed(
                "Connect",
                f"Could not take a connection slot for this destination: {exc}",
                "Backupsite counts every connection to a destination in Redis: check that Redis runs.",
            )
            return report
    try:
        conn = ftp.connect_once(settings, create_root=not read_only, lease=lease)
    except ftp.FtpError as exc:
        _report_connect_failure(report, settings, exc)
        return report
    with conn:
        report.passed("Connect", f"Connected to {where}.")
        if settings.ssl:
            report.fingerprint = conn.fingerprint
            pinned = bool(settings.tls_fingerprint)
            how = "the pinned certificate" if pinned else "a certificate this machine trusts"
            report.passed("TLS", f"Explicit TLS is on for commands and data, with {how}.")
        else:
            report.warn(
                "TLS",
                "Explicit SSL-FTP is off: the password and the backups cross the network unencrypted.",
                "Turn on explicit SSL-FTP if the server offers it.",
            )
        report.passed("Login", f"Logged in as {settings.username}.")
        report.passed("Server", f"The server says it runs on: {conn.system or 'not told'}.")
        report.passed("Directory", f"The backup directory is {conn.root} on the server.")
        mode = "passive" if settings.passive else "active"
        _probe(report, conn, read_only=read_only, mode=mode)  # reports its own FTP errors
        _permissions(report, conn)
    return report


def _report_connect_failure(report: Report, settings: FtpSettings, exc: ftp.FtpError) -> None:
    where = f"{settings.host}:{settings.port}"
    if isinstance(exc, ftp.ConnectFailed):
        report.failed("Connect", exc)
        return
    if isinstance(exc, ftp.FtpTimeout) and "greeting" in exc.message:
        report.failed("Connect", exc)
        return
    report.passed("Connect", f"Connected to {where}.")
    if isinstance(exc, ftp.CertificateUntrusted):
        report.fingerprint = exc.fingerprint or None
        report.pin_suggested = bool(exc.fingerprint)
        report.failed(
            "TLS",
            f"The server's certificate ({exc.fingerprint}) is not signed by an authority this machine trusts.",
            "If this is your server's certificate, compare the fingerprint with the server's and "
            "save the destination to pin it (trust on first use).",
        )
        return
    if isinstance(exc, ftp.CertificateMismatch):
        report.fingerprint = exc.fingerprint
        report.failed(
            "TLS",
            f"The server's certificate changed: it is {exc.fingerprint}, the pinned one is {exc.expected}.",
            exc.hint,
        )
        return
    if isinstance(exc, ftp.TlsRequired):
        report.failed("TLS", exc, "Turn on explicit SSL-FTP for this destination: the server requires it.")
        return
    if isinstance(exc, ftp.TlsFailed):
        report.failed("TLS", exc)
        return
    if settings.ssl:
        report.passed("TLS", "Explicit TLS is on.")
    if isinstance(exc, ftp.UnsupportedServer):
        report.passed("Login", f"Logged in as {settings.username}.")
        report.failed("Server", exc)
        return
    if isinstance(exc, ftp.LoginFailed | ftp.FtpTimeout):
        report.failed("Login", exc)
        return
    if isinstance(exc, ftp.PathRefused | ftp.DirectoryMissing | ftp.PermanentError):
        report.passed("Login", f"Logged in as {settings.username}.")
        report.failed("Directory", exc, exc.hint or "Check the directory and the FTP user's rights on it.")
        return
    report.failed("Login", exc)


def _probe(report: Report, conn: ftp.FtpConnection, *, read_only: bool, mode: str) -> None:
    data_check = f"{mode.capitalize()} data connection"
    other = "active" if mode == "passive" else "passive"
    hint = f"The data connection failed. Try {other} mode, or open the server's data ports in the firewall."
    if read_only:
        try:
            entries = conn.listdir("")
        except ftp.FtpError as exc:
            report.failed(data_check, exc, hint)
            return
        report.passed(
            data_check, f"Listed the directory ({len(entries)} entries) over a {mode} data connection."
        )
        report.passed("Write", "Skipped: the destination is read only.")
        return
    name = f".backupsite-probe-{secrets.token_hex(6)}"
    renamed = f"{name}.renamed"
    payload = secrets.token_bytes(PROBE_BYTES)
    try:
        conn.upload_file(name, io.BytesIO(payload))
    except (ftp.FtpTimeout, ftp.TransientError) as exc:
        report.failed(data_check, exc, hint)
        return
    except ftp.FtpError as exc:
        report.passed(data_check, f"Opened a {mode} data connection.")
        report.failed("Write", exc, "The FTP user may not write here: check its rights on the directory.")
        return
    report.passed(data_check, f"Opened a {mode} data connection.")
    report.passed("Write", f"Wrote a test file of {PROBE_BYTES // 1024} KiB.")
    try:
        names = {entry.name for entry in conn.listdir("")}
        if name not in names:
            report.failed(
                "List", "The test file does not appear in the directory listing.", "The server hides files."
            )
            return
        report.passed("List", "The test file appears in the directory listing.")
        back = b"".join(conn.download(name))
        if back != payload:
            report.failed("Read back", f"Read back {len(back)} bytes that differ from what was written.")
            return
        report.passed("Read back", "Read the test file back, byte for byte identical.")
        conn.rename(name, renamed)
        report.passed("Rename", "Renamed the test file (backups are committed by a rename).")
        conn.remove(renamed)
        report.passed("Delete", "Deleted the test file (rotation deletes old backups).")
    except ftp.FtpError as exc:
        report.failed(_next_step(report), exc)
        for leftover in (name, renamed):
            with contextlib.suppress(ftp.FtpError):
                conn.remove(leftover)


def _next_step(report: Report) -> str:
    order = ["List", "Read back", "Rename", "Delete"]
    done = {c.name for c in report.checks}
    return next((step for step in order if step not in done), "Delete")


def _permissions(report: Report, conn: ftp.FtpConnection) -> None:
    try:
        entry = conn.stat("")
    except ftp.FtpError:
        entry = None
    if entry is None or entry.mode is None:
        return
    mode = entry.mode
    if mode & (stat.S_IWOTH | stat.S_IROTH | stat.S_IWGRP):
        who = []
        if mode & stat.S_IROTH:
            who.append("readable by others")
        if mode & stat.S_IWOTH:
            who.append("writable by others")
        if mode & stat.S_IWGRP and not mode & stat.S_IWOTH:
            who.append("writable by its group")
        report.warn(
            "Permissions",
            f"The server shows the backup directory as {stat.filemode(stat.S_IFDIR | mode)}: {' and '.join(who)}.",
            "Other users of the FTP server may read or change backups: restrict the directory (chmod 700).",
        )
    else:
        report.passed(
            "Permissions", f"The backup directory is private ({stat.filemode(stat.S_IFDIR | mode)})."
        )
