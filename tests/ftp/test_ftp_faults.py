"""Staged server faults: NAT, dropped connections, transient refusals, hostile listings."""

from __future__ import annotations

import io
import itertools
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from destinations.ftp import FtpConnection
from tests.support.ftp_servers import (
    CraftedListing,
    DropMidTransfer,
    InProcessFtpServer,
    NatPasv,
    NoEprt,
    SilentAfterCut,
    Transient425,
)

FaultServer = Callable[..., InProcessFtpServer]

PAYLOAD = os.urandom(2 * 1024 * 1024 + 777)


@pytest.fixture(autouse=True)
def _fast(fast_retries: None) -> None:
    """Every test here retries: keep the backoff in milliseconds."""


def rest_offsets(server: InProcessFtpServer, verb: str) -> list[int]:
    """Offsets of REST commands that preceded `verb` (STOR or RETR)."""
    commands = server.state.commands
    return [
        int(match[1])
        for line, following in itertools.pairwise(commands)
        if (match := re.fullmatch(r"REST (\d+)", line)) and following.startswith(verb)
    ]


def test_pasv_naming_another_address_still_connects_to_the_server(fault_ftp_server: FaultServer) -> None:
    """
    GIVEN a server behind NAT that refuses EPSV and names 10.255.255.1 in its PASV reply
    WHEN files are listed, uploaded and downloaded in passive mode
    THEN data connections go to the control connection's host, and nothing waits for a timeout
    """
    server = fault_ftp_server(NatPasv)
    started = time.monotonic()
    with FtpConnection(server.settings(timeout=3.0)) as conn:
        conn.upload_file("f.bin", io.BytesIO(PAYLOAD))
        assert [entry.name for entry in conn.listdir()] == ["f.bin"]
        assert b"".join(conn.download("f.bin")) == PAYLOAD
    assert time.monotonic() - started < 3.0
    assert "EPSV" in server.state.commands
    assert "PASV" in server.state.commands


def test_active_mode_falls_back_to_port_when_eprt_is_refused(fault_ftp_server: FaultServer) -> None:
    server = fault_ftp_server(NoEprt)
    with FtpConnection(server.settings(passive=False)) as conn:
        conn.upload_file("f.bin", io.BytesIO(PAYLOAD))
        assert b"".join(conn.download("f.bin")) == PAYLOAD
    verbs = [line.split()[0] for line in server.state.commands]
    assert verbs.count("EPRT") == 1  # tried once, then remembered
    assert verbs.count("PORT") == 2
    assert not {"EPSV", "PASV"} & set(verbs)


@pytest.mark.parametrize("drop", ["data", "control"])
def test_upload_dropped_midway_is_resumed_and_byte_identical(
    fault_ftp_server: FaultServer, drop: str
) -> None:
    server = fault_ftp_server(DropMidTransfer, drop=drop, drop_after=700_000, commands={"STOR"})
    with FtpConnection(server.settings()) as conn:
        assert conn.upload_file("backup.tar", io.BytesIO(PAYLOAD)) == len(PAYLOAD)
    assert server.state.faults == 1
    assert (server.root / "backup.tar").read_bytes() == PAYLOAD
    [resumed_at] = rest_offsets(server, "STOR")
    assert 0 < resumed_at < len(PAYLOAD)  # resumed, not sent again from the start


def test_partial_upload_that_is_not_ours_is_redone_from_the_start(fault_ftp_server: FaultServer) -> None:
    """
    GIVEN a server whose partial file after a dropped upload holds other bytes (a previous
          version kept by a server that uploads into a hidden temporary file)
    WHEN the upload is retried
    THEN it starts over instead of appending to the wrong prefix
    """
    server = fault_ftp_server(
        DropMidTransfer, drop="data", drop_after=700_000, commands={"STOR"}, corrupt=True
    )
    with FtpConnection(server.settings()) as conn:
        conn.upload_file("backup.tar", io.BytesIO(PAYLOAD))
    assert (server.root / "backup.tar").read_bytes() == PAYLOAD
    assert [line for line in server.state.commands if line.startswith("STOR")] == ["STOR /backup.tar"] * 2
    assert rest_offsets(server, "STOR") == []  # sent again from the start
    assert len(rest_offsets(server, "RETR")) == 1  # after reading the partial copy's tail


@pytest.mark.parametrize("drop", ["data", "control"])
def test_download_dropped_midway_is_resumed(fault_ftp_server: FaultServer, drop: str) -> None:
    server = fault_ftp_server(DropMidTransfer, drop=drop, drop_after=600_000, commands={"RETR"})
    (server.root / "backup.tar").write_bytes(PAYLOAD)
    with FtpConnection(server.settings()) as conn:
        assert b"".join(conn.download("backup.tar")) == PAYLOAD
        part = b"".join(conn.download("backup.tar", offset=100, length=1_000_000))
    assert part == PAYLOAD[100:1_000_100]
    assert server.state.faults == 1
    assert rest_offsets(server, "RETR")[0] > 100  # the first download resumed where it was cut


def test_ranged_download_is_complete_even_when_stopping_the_transfer_fails(
    fault_ftp_server: FaultServer,
) -> None:
    """
    GIVEN a server that never answers once a download is cut short
    WHEN a range is downloaded
    THEN every byte of the range arrives, and the next operation reconnects
    """
    server = fault_ftp_server(SilentAfterCut)
    big = PAYLOAD * 4
    (server.root / "pack").write_bytes(big)
    with FtpConnection(server.settings(timeout=0.5)) as conn:
        assert b"".join(conn.download("pack", offset=10, length=1_000_000)) == big[10:1_000_010]
        assert conn.size("pack") == len(big)
    assert server.state.connections == 2


@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
def test_transient_425_on_a_transfer_is_retried(fault_ftp_server: FaultServer, passive: bool) -> None:
    """pure-ftpd's passive-port race: "425 Unable to identify the local data socket"."""
    server = fault_ftp_server(Transient425, faults=2)
    with FtpConnection(server.settings(passive=passive, retries=2)) as conn:
        conn.upload_file("a.bin", io.BytesIO(PAYLOAD))  # refused once
        assert b"".join(conn.download("a.bin")) == PAYLOAD  # refused once
    assert server.state.faults == 2
    assert (server.root / "a.bin").read_bytes() == PAYLOAD
    assert server.state.connections == 1  # a 425 needs no new login


MLSD_LINES = [
    "type=cdir;modify=20240101120000; .",
    "type=pdir;modify=20240101120000; ..",
    "type=file;size=10;modify=20240101120000.250;UNIX.mode=0640; good.txt",
    "type=dir;modify=20240102000000; sub",
    "type=file;size=14; .htaccess",
    "type=OS.unix=symlink;modify=20240101120000; current",
    "type=file;size=1; ../../etc/passwd",
    "type=file;size=1; a/b",
    "type=file;size=1; ..",
    "type=file;size=1; bad\rname",
    "type=file;size=1; nul\0name",
    "type=file;size=1; latin\udce9",  # not UTF-8
]


def test_mlsd_listing_is_parsed_and_unsafe_names_dropped(
    fault_ftp_server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = fault_ftp_server(CraftedListing, lines=MLSD_LINES)
    with FtpConnection(server.settings()) as conn:
        entries = {entry.name: entry for entry in conn.listdir()}
    assert list(entries) == ["good.txt", "sub", ".htaccess", "current"]
    good = entries["good.txt"]
    assert (good.type, good.size, good.mode) == ("file", 10, 0o640)
    assert good.mtime == datetime(2024, 1, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    assert entries["sub"].type == "dir"
    assert entries["current"].type == "link"
    dropped = [record.getMessage() for record in caplog.records if "dropped" in record.getMessage()]
    assert len(dropped) == 6


LIST_LINES = [
    "total 12",
    "drwxr-xr-x    2 999      backupsite     4096 Nov 26 09:17 .",
    "drwxr-xr-x    2 999      backupsite     4096 Nov 26 09:17 ..",
    "-rw-r--r--    1 0        0                14 Nov 26 09:17 .htaccess",
    "-rw-r-----    1 999      backupsite  5000000 Jan  3  2023 big file.tar",
    "lrwxrwxrwx    1 1        1                 7 Nov 26 09:17 current -> 2026-11-26",
    "drwx--x--t    3 user     group          4096 Feb 29  2024 mail",
    "-rw-r--r--    1 1        1                 1 Nov 26 09:17 ../../etc/passwd",
]


def test_list_fallback_is_parsed_when_mlsd_is_missing(fault_ftp_server: FaultServer) -> None:
    server = fault_ftp_server(CraftedListing, lines=LIST_LINES, mlsd=False)
    (server.root / "some/dir").mkdir(parents=True)
    with FtpConnection(server.settings()) as conn:
        entries = {entry.name: entry for entry in conn.listdir("some/dir")}
    assert list(entries) == [".htaccess", "big file.tar", "current", "mail"]
    big = entries["big file.tar"]
    assert (big.type, big.size, big.mode) == ("file", 5_000_000, 0o640)
    assert big.mtime == datetime(2023, 1, 3, tzinfo=UTC)
    assert entries["current"].type == "link"
    assert (entries["mail"].type, entries["mail"].mode) == ("dir", 0o1711)
    assert "LIST -a" in server.state.commands  # "-a": servers hide dot files from a plain LIST
    assert "CWD /some/dir" in server.state.commands


def test_a_slow_link_draining_socket_buffers_is_not_mistaken_for_a_silent_server(fault_ftp_server):
    """GIVEN a server that takes uploads at 400 kB/s and a 2 s timeout
    WHEN a 3 MB upload leaves seconds of data in the socket buffers after the last write
    THEN the client waits while the server keeps taking bytes, and the upload succeeds at once,
    with no retry (the timeout is for a stall, not for the whole drain)."""
    import io
    import os

    from destinations.ftp import FtpConnection
    from tests.support.ftp_servers import Throttled

    server = fault_ftp_server(Throttled, read_limit=400_000, rcvbuf=65536)
    data = os.urandom(3_000_000)
    with FtpConnection(server.settings(timeout=2.0, retries=0)) as conn:
        assert conn.upload_file("slow.bin", io.BytesIO(data)) == len(data)
    assert (server.root / "slow.bin").read_bytes() == data
    assert sum(1 for c in server.state.commands if c.startswith(("STOR", "APPE"))) == 1
