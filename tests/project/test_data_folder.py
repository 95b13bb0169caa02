"""The data folder is private: `make run`'s steps leave it 0700 with its files 0600, an older
install made 0755/0644 is tightened when the panel starts, and `manage.py check` reports a
data folder or database open to other users."""

import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from backupsite import checks
from tests.support import REPO

ROOT = REPO
# What the caller's environment may set that would point the panel at other servers or folders.
_DROP = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "BACKUPSITE_ENCRYPTION_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}


def panel_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP}
    return {**env, "BACKUPSITE_DATA_DIR": str(data_dir)}


def manage(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The test process keeps its umask 022: manage.py must not rely on the caller's.
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=panel_env(data_dir),
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def open_paths(data_dir: Path) -> list[str]:
    """Everything in the data folder (outside the public static files) that others may open."""
    found = []
    for folder, dirs, names in os.walk(data_dir):
        if Path(folder) == data_dir and "static" in dirs:
            dirs.remove("static")
        for name in (*dirs, *names):
            path = Path(folder) / name
            if not path.is_symlink() and mode(path) & 0o077:
                found.append(f"{path.relative_to(data_dir)} {mode(path):04o}")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_panel_briefly(data_dir: Path, log: Path, until) -> None:
    """Start `manage.py runpanel`, wait for `until()` to hold, then stop it with SIGTERM."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "runpanel", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
            cwd=ROOT,
            env=panel_env(data_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 90
            while True:
                assert proc.poll() is None, log.read_text(errors="replace")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2) as response:
                        web_up = response.status == 200
                except OSError:
                    web_up = False
                if web_up and until():
                    break
                assert time.monotonic() < deadline, "the panel did not start:\n" + log.read_text(
                    errors="replace"
                )
                time.sleep(0.5)
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.mark.slow
@pytest.mark.peer
def test_make_run_steps_leave_the_data_folder_private(tmp_path):
    """GIVEN a fresh data folder WHEN `make run`'s steps run (migrate, collectstatic,
    ensure_admin, runpanel) THEN the folder is 0700 and the database, its WAL, the keys, the
    Redis socket and append-only files, beat's schedule and the logs are for the owner only."""
    data = tmp_path / "data"
    for step in (
        ("migrate", "--noinput"),
        ("collectstatic", "--noinput", "--verbosity", "0"),
        ("ensure_admin",),
    ):
        done = manage(data, *step)
        assert done.returncode == 0, done.stdout + done.stderr
    assert mode(data) == 0o700
    assert mode(data / "backupsite.sqlite3") == 0o600
    assert mode(data / "secret_key") == 0o600
    assert open_paths(data) == []

    seen: dict[str, int] = {}

    def running_files_private() -> bool:
        # beat holds a database connection (WAL and shared memory open) and Redis its
        # append-only file (Redis 7 keeps it in a folder of its own).
        wanted = [data / "backupsite.sqlite3-wal", data / "backupsite.sqlite3-shm", data / "redis.sock"]
        aof_dir = data / "appendonlydir"
        aof = [*aof_dir.iterdir(), aof_dir] if aof_dir.is_dir() else [data / "redis.aof"]
        if not all(path.exists() for path in [*wanted, *aof]):
            return False
        for path in [*wanted, *aof]:
            seen[str(path.relative_to(data))] = mode(path)
        seen["open"] = len(open_paths(data))
        return True

    run_panel_briefly(data, tmp_path / "panel.log", running_files_private)
    assert seen.pop("open") == 0, open_paths(data)
    assert seen["backupsite.sqlite3-wal"] == 0o600
    assert seen["backupsite.sqlite3-shm"] == 0o600
    assert seen["redis.sock"] & 0o077 == 0
    assert all(value == 0o600 for name, value in seen.items() if "aof" in name), seen
    assert seen.get("appendonlydir", 0o700) == 0o700
    assert mode(data) == 0o700
    assert open_paths(data) == []


@pytest.mark.slow
def test_an_open_install_is_reported_by_check_and_tightened_at_start(tmp_path):
    """GIVEN an install made before: folder 0755, database and key 0644, a cached manifest
    0755/0644 WHEN `manage.py check` runs THEN it reports errors for the folder and the
    database; WHEN `make run`'s first step (migrate) runs THEN everything is private again,
    and the public static files are left readable."""
    data = tmp_path / "data"
    assert manage(data, "migrate", "--noinput").returncode == 0
    manifest_dir = data / "manifests" / "1" / "alice" / "20260101-000000"
    manifest_dir.mkdir(parents=True)
    (manifest_dir / "manifest-1.json.zst").write_bytes(b"x")
    (data / "static").mkdir()
    (data / "static" / "site.css").write_text("body {}")
    for path in (data, data / "manifests", data / "manifests" / "1", manifest_dir.parent, manifest_dir):
        path.chmod(0o755)
    for path in (data / "backupsite.sqlite3", data / "secret_key", manifest_dir / "manifest-1.json.zst"):
        path.chmod(0o644)

    done = manage(data, "check")
    assert done.returncode != 0
    assert "backupsite.E001" in done.stderr, done.stderr
    assert "backupsite.E002" in done.stderr, done.stderr
    assert mode(data) == 0o755  # check only looks

    done = manage(data, "migrate", "--noinput")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "made 8 path(s) in the data folder private" in done.stderr
    assert open_paths(data) == []
    assert mode(data) == 0o700
    assert mode(data / "backupsite.sqlite3") == 0o600
    assert mode(manifest_dir / "manifest-1.json.zst") == 0o600
    assert mode(data / "static" / "site.css") == 0o644

    done = manage(data, "check")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_check_reports_a_database_kept_outside_the_data_folder_open_to_others(tmp_path, settings):
    """GIVEN DATABASE_URL naming a SQLite file outside the data folder, readable by all
    THEN the check reports it (and nothing for the private data folder)."""
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir(mode=0o700)
    database = tmp_path / "elsewhere.sqlite3"
    database.write_bytes(b"")
    database.chmod(0o644)
    settings.DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(database)}}
    found = checks.data_folder_private(None)
    assert [message.id for message in found] == ["backupsite.E002"]
    assert str(database) in found[0].msg
    database.chmod(0o600)
    assert checks.data_folder_private(None) == []
