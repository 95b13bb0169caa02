"""Path confinement: nothing this module is given may leave the destination directory."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from destinations.ftp import FtpConnection, PathRefused, clean_path, unsafe_name_reason
from tests.support.ftp_servers import InProcessFtpServer

FaultServer = Callable[..., InProcessFtpServer]


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../x", "a/../../b", "a/b/..", "..", "x\0y", "x\ny", "x\r", "//double"],
)
def test_escaping_and_control_character_paths_are_refused(path: str) -> None:
    with pytest.raises(PathRefused):
        clean_path(path)


@pytest.mark.parametrize(
    ("path", "clean"),
    [("", ""), (".", ""), ("a//b/./c/", "a/b/c"), ("daily/2026-11-26/home.tar", "daily/2026-11-26/home.tar")],
)
def test_paths_are_normalised(path: str, clean: str) -> None:
    assert clean_path(path) == clean


@pytest.mark.parametrize(
    ("name", "safe"), [("a.txt", True), (".htaccess", True), ("..", False), ("a/b", False)]
)
def test_unsafe_remote_names(name: str, safe: bool) -> None:
    assert (unsafe_name_reason(name) is None) is safe


def test_every_operation_refuses_an_escaping_path_before_talking_to_the_server(
    fault_ftp_server: FaultServer,
) -> None:
    server = fault_ftp_server()
    (server.root / "ok").write_bytes(b"x")
    with FtpConnection(server.settings()) as conn:
        after_login = len(server.state.commands)
        calls = [
            lambda: conn.listdir("../"),
            lambda: conn.stat("/etc/passwd"),
            lambda: conn.size("a/../../x"),
            lambda: conn.makedirs("../up"),
            lambda: conn.upload_file("../x", io.BytesIO(b"x")),
            lambda: conn.open_upload("/abs").__enter__(),
            lambda: conn.download("../x"),
            lambda: conn.rename("ok", "../ok"),
            lambda: conn.rename("../ok", "ok2"),
            lambda: conn.remove("x\r\nDELE ok"),
            lambda: conn.rmdir(".."),
            lambda: conn.remove_tree("../.."),
            lambda: conn.remove_tree(""),  # the destination itself
        ]
        for call in calls:
            with pytest.raises(PathRefused):
                call()
        assert server.state.commands[after_login:] == []
    assert (server.root / "ok").exists()


def test_destination_directory_cannot_climb_out(fault_ftp_server: FaultServer) -> None:
    server = fault_ftp_server()
    with pytest.raises(PathRefused):
        FtpConnection(server.settings(directory="backups/../../etc"))
    assert server.state.connections == 0
