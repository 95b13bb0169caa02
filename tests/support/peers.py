"""Helpers for tests that need a real peer (a server process over TCP).

Outside CI a missing peer skips the test with the reason; under CI=true it fails it,
because `.ci/run` installs every peer and a skipped real-peer test proves nothing.
"""

import os
import shutil
import socket
import time
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing_peer(reason: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"real peer unavailable under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def require_binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if not path:
        missing_peer(f"{name} is not installed")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing is listening on {host}:{port} after {timeout} s")
