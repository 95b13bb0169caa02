"""An upload the server will not resume is sent again from the start (ProFTPD's stock
AllowStoreRestart off answers `451 Append/Restart not permitted` to every resume)."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from typing import Any

import pytest

from destinations.ftp import FtpConnection
from tests.support.ftp_servers import DropMidTransfer, InProcessFtpServer, ServerState

FaultServer = Callable[..., InProcessFtpServer]

PAYLOAD = os.urandom(2 * 1024 * 1024 + 321)


@pytest.fixture(autouse=True)
def _fast(fast_retries: None) -> None:
    """Retries back off in milliseconds."""


class NoResume(DropMidTransfer):
    """Drops the first upload midway (DropMidTransfer), then refuses every resume.

    options: rest ("350 ..." accepts REST like ProFTPD, anything else is REST's refusal),
    refuse (the reply to STOR after REST, and to APPE), no_rest_feature (FEAT hides REST, so
    a client can only resume with APPE).
    """

    state: ServerState
    options: dict[str, Any]
    _restart_position: int

    def ftp_REST(self, line: str) -> Any:
        reply = self.options.get("rest", "350")
        if reply.startswith("350"):
            return super().ftp_REST(line)  # type: ignore[misc]
        self.respond(reply)  # type: ignore[attr-defined]
        return None

    def _refuse(self) -> None:
        self._shutdown_connecting_dtp()  # type: ignore[attr-defined]
        self._restart_position = 0
        self.respond(self.options.get("refuse", "451 Append/Restart not permitted, try again"))  # type: ignore[attr-defined]

    def ftp_STOR(self, file: str, mode: str = "w") -> Any:
        if self._restart_position or mode == "a":
            self._refuse()
            return None
        return super().ftp_STOR(file, mode)  # type: ignore[misc]

    def ftp_FEAT(self, line: str) -> Any:
        if not self.options.get("no_rest_feature"):
            return super().ftp_FEAT(line)  # type: ignore[misc]
        features = ["EPSV", "MDTM", "MLST type*;size*;modify*;perm*;", "SIZE", "UTF8"]  # no REST
        lines = "".join(f" {feature}\r\n" for feature in features)
        self.push(f"211-Features supported:\r\n{lines}211 End FEAT.\r\n")  # type: ignore[attr-defined]
        return None


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(
            {"rest": "350 Restarting", "refuse": "451 Append/Restart not permitted, try again"},
            id="proftpd-451-on-stor",
        ),
        pytest.param({"rest": "502 Command not implemented."}, id="rest-502"),
        pytest.param({"rest": "504 Command not implemented for that parameter."}, id="rest-504"),
        pytest.param({"rest": "550 Restart not permitted."}, id="rest-550"),
        pytest.param(
            {"no_rest_feature": True, "refuse": "451 Append/Restart not permitted, try again"}, id="appe-451"
        ),
    ],
)
@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
def test_an_upload_the_server_will_not_resume_is_sent_again_from_the_start(
    fault_ftp_server: FaultServer, options: dict[str, Any], passive: bool
) -> None:
    """
    GIVEN a server that drops the first upload midway and refuses to resume it (REST refused
          with 502/504/550, or accepted and then STOR/APPE refused with 451)
    WHEN the upload is retried
    THEN it is sent again from byte 0, once, and the stored file is byte-identical
    """
    server = fault_ftp_server(NoResume, drop="data", drop_after=700_000, commands={"STOR"}, **options)
    with FtpConnection(server.settings(passive=passive, retries=3)) as conn:
        assert conn.upload_file("backup.tar", io.BytesIO(PAYLOAD)) == len(PAYLOAD)
    assert server.state.faults == 1
    assert (server.root / "backup.tar").read_bytes() == PAYLOAD
    commands = server.state.commands
    transfers = [i for i, line in enumerate(commands) if re.match(r"(STOR|APPE) ", line)]
    refused_after_rest = str(options.get("rest", "350")).startswith("350")
    # the dropped one, the refused resume (when REST itself was not refused), the new one from 0
    assert len(transfers) == (3 if refused_after_rest else 2)
    if options.get("no_rest_feature"):
        assert commands[transfers[1]] == "APPE /backup.tar"
    assert commands[transfers[-1]] == "STOR /backup.tar"
    assert not commands[transfers[-1] - 1].startswith("REST")
