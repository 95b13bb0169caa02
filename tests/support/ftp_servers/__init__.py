"""FTP servers for tests and benchmark scripts: a real pure-ftpd, and in-process fault servers.

`PureFtpd` runs /usr/sbin/pure-ftpd in the foreground on 127.0.0.1 with a private puredb
virtual user, a chrooted home in a temp folder, a self-signed certificate and a random block
of passive ports, so several instances (and several test workers) never collide.

The in-process servers run pyftpdlib in a background thread, with handlers that stage one
precise fault each (a Windows SYST, a PASV naming another address, a dropped connection, a
transient 425, ...). A silent TCP listener plays a server that never sends its banner.

Nothing here imports pytest: benchmark scripts use these launchers too. A missing binary or
privilege raises PeerUnavailable, which the fixtures turn into `missing_peer()`.

This package's __init__ exports the launchers' public API on purpose, so that importers write
`from tests.support.ftp_servers import PureFtpd`.
"""

from tests.support.ftp_servers.pureftpd import (
    FTP_SYSTEM_USER,
    PASSIVE_BLOCK,
    PURE_FTPD,
    CraftedListing,
    DropMidTransfer,
    EchoingPass,
    InProcessFtpServer,
    NatPasv,
    NoEprt,
    PeerUnavailable,
    PureFtpd,
    RefuseFirstConnections,
    SelfSignedCert,
    ServerState,
    SilentAfterCut,
    SilentServer,
    Throttled,
    Transient425,
    WindowsSyst,
    closed_port,
    ensure_system_user,
    fingerprint_of,
    free_port_block,
    make_self_signed_cert,
    wait_listening,
)

__all__ = [
    "FTP_SYSTEM_USER",
    "PASSIVE_BLOCK",
    "PURE_FTPD",
    "CraftedListing",
    "DropMidTransfer",
    "EchoingPass",
    "InProcessFtpServer",
    "NatPasv",
    "NoEprt",
    "PeerUnavailable",
    "PureFtpd",
    "RefuseFirstConnections",
    "SelfSignedCert",
    "ServerState",
    "SilentAfterCut",
    "SilentServer",
    "Throttled",
    "Transient425",
    "WindowsSyst",
    "closed_port",
    "ensure_system_user",
    "fingerprint_of",
    "free_port_block",
    "make_self_signed_cert",
    "wait_listening",
]
