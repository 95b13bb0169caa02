"""FTP servers for tests and benchmark scripts: a real pure-ftpd, and in-process fault servers.

`PureFtpd` runs /usr/sbin/pure-ftpd in the foreground on 127.0.0.1 with a private puredb
virtual user, a chrooted home in a temp folder, a self-signed certificate and a random block
of passive ports, so several instances (and several test workers) never collide.

The in-process servers run pyftpdlib in a background thread, with handlers that stage one
precise fault each (a Windows SYST, a PASV naming another address, a dropped connection, a
transient 425, ...). A silent TCP listener plays a server that never sends its banner.

Nothing here imports pytest: benchmark scripts use these launchers too. A missing binary or
privilege raises PeerUnavailable, which the fixtures turn into `missing_peer()`.

The modules, by role:

* `pureftpd`: `PureFtpd` and `ensure_system_user`.
* `inprocess`: `InProcessFtpServer` (pyftpdlib in a thread), `ServerState`, `SilentServer`, `closed_port`.
* `faults`: the handler mixins that stage one fault each, for `InProcessFtpServer`.
* `common`: `PeerUnavailable`, self-signed certificates, free ports, `wait_listening`.

This __init__ exports the launchers' public API on purpose, so that importers write
`from tests.support.ftp_servers import PureFtpd`.
"""

from tests.support.ftp_servers.common import (
    PeerUnavailable,
    SelfSignedCert,
    fingerprint_of,
    free_port_block,
    make_self_signed_cert,
    wait_listening,
)
from tests.support.ftp_servers.faults import (
    CraftedListing,
    DropMidTransfer,
    EchoingPass,
    NatPasv,
    NoEprt,
    RefuseFirstConnections,
    SilentAfterCut,
    Throttled,
    Transient425,
    WindowsSyst,
)
from tests.support.ftp_servers.inprocess import InProcessFtpServer, ServerState, SilentServer, closed_port
from tests.support.ftp_servers.pureftpd import (
    FTP_SYSTEM_USER,
    PASSIVE_BLOCK,
    PURE_FTPD,
    PureFtpd,
    ensure_system_user,
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
