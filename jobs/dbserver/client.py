"""The seam to the MySQL/MariaDB server: dumps and imports through the server's own
command-line tools (mariadb-dump / mysqldump, mariadb / mysql), streamed, never staged.

A server is described by a URL like BACKUPSITE_MYSQL_URL (mysql://user:password@host:port/ or
mysql://user@localhost/?socket=/run/mysqld/mysqld.sock; ``jobs.mysql.server`` reads it from
the settings). The password reaches the tools through a private option file, never the command
line (visible in `ps`).

Plain Python (no Django).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import IO, BinaryIO, cast
from urllib.parse import parse_qs, unquote, urlparse

from backupsite.errors import Error

_DB_NAME = re.compile(r"^[A-Za-z0-9_$-]{1,64}$")


class MysqlError(Error):
    """The database server refused, failed or could not be reached; the message says which."""


@dataclass(frozen=True)
class MysqlServer:
    user: str = "root"
    password: str = field(default="", repr=False)
    host: str = "localhost"
    port: int = 3306
    socket: str = ""

    @classmethod
    def from_url(cls, url: str) -> MysqlServer:
        parsed = urlparse(url)
        if parsed.scheme not in ("mysql", "mariadb"):
            raise MysqlError(f"BACKUPSITE_MYSQL_URL must start with mysql://, not {parsed.scheme or url!r}")
        query = parse_qs(parsed.query)
        return cls(
            user=unquote(parsed.username or "root"),
            password=unquote(parsed.password or ""),
            host=parsed.hostname or "localhost",
            port=parsed.port or 3306,
            socket=query.get("socket", [""])[0],
        )

    @contextlib.contextmanager
    def _options_file(self) -> Iterator[str]:
        lines = ["[client]", f"user={self.user}"]
        if self.password:
            lines.append(f"password={self.password}")
        if self.socket:
            lines.append(f"socket={self.socket}")
        else:
            lines += [f"host={self.host}", f"port={self.port}"]
            if self.host != "localhost":
                lines.append("protocol=tcp")
        fd, path = tempfile.mkstemp(prefix="backupsite-my-", suffix=".cnf")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write("\n".join(lines) + "\n")
            yield path
        finally:
            os.unlink(path)

    def _tool(self, *names: str) -> str:
        for name in names:
            found = shutil.which(name)
            if found:
                return found
        raise MysqlError(f"none of {', '.join(names)} is installed on this server")

    def query(self, sql: str, database: str = "") -> list[list[str]]:
        client = self._tool("mariadb", "mysql")
        with self._options_file() as options:
            argv = [client, f"--defaults-extra-file={options}", "--batch", "--skip-column-names", "-e", sql]
            if database:
                argv.append(check_name(database))
            done = subprocess.run(argv, capture_output=True, timeout=120, check=False)
        if done.returncode:
            raise MysqlError(done.stderr.decode(errors="replace").strip() or "mysql client failed")
        return [line.split("\t") for line in done.stdout.decode().splitlines()]

    def list_databases(self, pattern: str) -> list[str]:
        """Databases whose names match a LIKE pattern, e.g. 'bob\\_%'."""
        rows = self.query(f"SHOW DATABASES LIKE '{pattern}'")
        return [row[0] for row in rows if row]

    def grants_catalog(self) -> tuple[list[str], list[str]]:
        """Every database and every database user (with a grant) on the server, for account
        discovery without cPanel's database maps."""
        databases = [row[0] for row in self.query("SHOW DATABASES") if row]
        users = [row[0] for row in self.query("SELECT DISTINCT User FROM mysql.user") if row and row[0]]
        return databases, users

    @contextlib.contextmanager
    def dump(self, database: str) -> Iterator[IO[bytes]]:
        """Stream a consistent dump (no CREATE DATABASE line) of `database`."""
        tool = self._tool("mariadb-dump", "mysqldump")
        with self._options_file() as options:
            argv = [
                tool,
                f"--defaults-extra-file={options}",
                "--single-transaction",
                "--quick",
                "--routines",
                "--triggers",
                "--events",
                "--hex-blob",
                "--default-character-set=utf8mb4",
                check_name(database),
            ]
            with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
                assert proc.stdout is not None
                assert proc.stderr is not None
                try:
                    yield proc.stdout
                    proc.stdout.read()
                finally:
                    code = proc.wait()
                stderr = proc.stderr.read().decode(errors="replace").strip()
            if code:
                raise MysqlError(f"dump of {database} failed: {stderr or f'exit code {code}'}")

    def load(self, database: str, source: IO[bytes], *, create: bool = True) -> None:
        """Import an SQL stream into `database` (created when missing)."""
        client = self._tool("mariadb", "mysql")
        name = check_name(database)
        if create:
            self.query(f"CREATE DATABASE IF NOT EXISTS `{name}`")
        with self._options_file() as options:
            argv = [client, f"--defaults-extra-file={options}", "--default-character-set=utf8mb4", name]
            with subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
                assert proc.stdin is not None
                assert proc.stderr is not None
                try:
                    while chunk := source.read(1024 * 1024):
                        proc.stdin.write(chunk)
                except BrokenPipeError:
                    pass
                finally:
                    proc.stdin.close()
                code = proc.wait()
                stderr = proc.stderr.read().decode(errors="replace").strip()
        if code:
            raise MysqlError(f"import into {database} failed: {stderr or f'exit code {code}'}")

    def as_user(self, user: str, password: str) -> MysqlServer:
        """The same server, logged in as another user (e.g. a temporary restore user)."""
        return replace(self, user=user, password=password)

    @contextlib.contextmanager
    def importer(self, database: str, *, untrusted: bool = False) -> Iterator[SqlPipe]:
        """A pipe into the client that runs the SQL written to it in `database` (which must exist).

        Push-style counterpart of `load`, for callers that receive the SQL in pieces. Raises
        MysqlError on leaving when the client failed. `untrusted` (SQL from a backup): the
        client is sandboxed (no shell escapes, `source`, `tee`; no LOAD DATA LOCAL), and a
        client that cannot be sandboxed is refused rather than trusted.
        """
        client = self._tool("mariadb", "mysql")
        argv = [client, "", "--default-character-set=utf8mb4", "--binary-mode"]
        if untrusted:
            argv += [*_sandbox_options(client), "--local-infile=0"]
        argv.append(check_name(database))
        with self._options_file() as options:
            argv[1] = f"--defaults-extra-file={options}"
            with subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            ) as proc:
                assert proc.stdin is not None
                assert proc.stderr is not None
                broken = False
                try:
                    yield SqlPipe(proc.stdin)
                except BrokenPipeError:
                    broken = True  # the client stopped at an error: its message says which
                finally:
                    with contextlib.suppress(BrokenPipeError):
                        proc.stdin.close()
                    code = proc.wait()
                    stderr = proc.stderr.read().decode(errors="replace").strip()
        if code or broken:
            raise MysqlError(f"import into {database} failed: {stderr or f'exit code {code}'}")


class SqlPipe:
    """The client's stdin; a client that quit early surfaces as BrokenPipeError from write."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self._pipe = pipe

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._pipe.write(data)
        return len(data)


@functools.lru_cache(maxsize=4)
def _sandbox_options(client: str) -> tuple[str, ...]:
    """Options that stop the client from running its own commands found in the SQL."""
    done = subprocess.run([client, "--help"], capture_output=True, timeout=30, check=False)
    if b"--sandbox" in done.stdout:
        return ("--sandbox",)
    raise MysqlError(
        f"{client} cannot load SQL from a backup safely (it has no --sandbox option); "
        "install a MariaDB client from 10.5.25, 10.6.18, 10.11.8 or later"
    )


def check_name(name: str) -> str:
    if not _DB_NAME.match(name):
        raise MysqlError(f"{name!r} is not a database name Backupsite accepts")
    return name


@dataclass(frozen=True)
class DumpSource:
    """A database to back up, as the native engine wants it: a name and a way to stream it."""

    name: str
    server: MysqlServer

    def open(self) -> contextlib.AbstractContextManager[BinaryIO]:
        return cast(contextlib.AbstractContextManager[BinaryIO], self.server.dump(self.name))
