"""The FTP seam's errors: each explains a failure in plain language, with a hint for the admin.

Also how a server's refusal becomes one of them (`_reply_error`), and the scrubbing that keeps a
password a server echoes back out of every message.
"""

from __future__ import annotations

import re

import aioftp

from backupsite.errors import Error


class FtpError(Error):
    """A failure explained in plain language, with a hint for the admin."""


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
