"""The FTP seam: the only package in Backupsite that talks FTP.

Built on aioftp, exposed as a synchronous API: Celery tasks and engines are plain
synchronous code, and each `FtpConnection` owns a private asyncio event loop that it drives
with `run_until_complete`. A connection is used by one thread at a time; parallel transfers
use several connections of one `FtpSession`.

Every path given to this package is relative to the destination's directory and is refused
(PathRefused) if it would leave it. Names that a server sends in listings are untrusted.

What aioftp 0.28.3 lacks and this package adds (measured in the team's FTP server notes):
- explicit FTPS data connections in the order real servers need (pure-ftpd, vsftpd): plain TCP
  first, then REST and the command, the 1xx reply, and only then the TLS handshake, resuming
  the control connection's TLS session;
- active mode (EPRT, then PORT), where the client stays the TLS client on the data channel;
- a login that never passes the password through any logger;
- per-transfer economy: TYPE I once per connection, 1 MiB blocks, no MLST probe per upload.

The package imports neither Django nor any app module; the Django-facing glue (a
destination's settings, Redis URL and lease TTL) is destinations/sessions.py. Only this
package imports aioftp. Its modules, each importing only those above it:

- interface.py: FtpSettings, RemoteEntry, and the RemoteStore protocol engines work against;
- errors.py: FtpError and its family, and how a server's refusal becomes one;
- paths.py: paths confined to the destination directory, unsafe remote names;
- tls.py: TLS contexts and certificate fingerprints;
- parsing.py: MLSD, LIST and MLST listings;
- transfers.py: data connections (the base class of the control connection);
- control.py: the control connection: connecting, TLS, login, commands;
- leases.py: the per-destination connection cap, in Redis (imports nothing of the seam);
- connection.py: FtpConnection and connect_once, the synchronous API;
- session.py: FtpSession, a few connections reused for the life of a task.

This module exports, on purpose, the seam's public API that the rest of Backupsite uses;
the connection leases are imported from destinations.ftp.leases.
"""

from .connection import FtpConnection, connect_once
from .errors import (
    CONNECTION_FAILURES,
    CertificateMismatch,
    CertificateUntrusted,
    ConnectFailed,
    DestinationBusy,
    DirectoryMissing,
    FtpError,
    FtpTimeout,
    LoginFailed,
    PathRefused,
    PermanentError,
    ResumeRefused,
    TlsFailed,
    TlsRequired,
    TransientError,
    UnsupportedServer,
)
from .interface import EntryType, FtpSettings, RemoteEntry, RemoteStore, UploadStream
from .parsing import parse_listing
from .paths import clean_path, unsafe_name_reason
from .session import FtpSession
from .tls import fingerprint_of, normalise_fingerprint

__all__ = [
    "CONNECTION_FAILURES",
    "CertificateMismatch",
    "CertificateUntrusted",
    "ConnectFailed",
    "DestinationBusy",
    "DirectoryMissing",
    "EntryType",
    "FtpConnection",
    "FtpError",
    "FtpSession",
    "FtpSettings",
    "FtpTimeout",
    "LoginFailed",
    "PathRefused",
    "PermanentError",
    "RemoteEntry",
    "RemoteStore",
    "ResumeRefused",
    "TlsFailed",
    "TlsRequired",
    "TransientError",
    "UnsupportedServer",
    "UploadStream",
    "clean_path",
    "connect_once",
    "fingerprint_of",
    "normalise_fingerprint",
    "parse_listing",
    "unsafe_name_reason",
]
