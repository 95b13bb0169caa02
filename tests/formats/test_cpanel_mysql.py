"""The generator's database dumps are real: MariaDB loads them and keeps the odd strings intact."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from destinations.formats.cpanel import iter_members, part_selector
from tests.support.cpanel_archives import make_account_archive
from tests.support.peers import missing_peer, require_binary

pytestmark = pytest.mark.peer

HOST = os.environ.get("MARIADB_HOST", "127.0.0.1")
PORT = os.environ.get("MARIADB_PORT", "3306")
USER = os.environ.get("MARIADB_USER", "root")


def _mysql(client: str, *args: str, stdin: bytes | None = None) -> str:
    result = subprocess.run(
        [client, f"-h{HOST}", f"-P{PORT}", f"-u{USER}", "--batch", "--raw", "--skip-column-names", *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(result.stderr.decode(errors="replace"))
    return result.stdout.decode()


@pytest.fixture(scope="module")
def client() -> str:
    path = require_binary("mariadb")
    try:
        _mysql(path, "-e", "SELECT 1")
    except (AssertionError, subprocess.TimeoutExpired) as exc:
        missing_peer(f"MariaDB at {HOST}:{PORT} is not reachable: {exc}")
    return path


def test_database_part_read_from_the_archive_loads_into_mariadb(client: str, tmp_path: Path) -> None:
    """GIVEN bob_shop/bob_wp read back from an archive WHEN loaded THEN rows and odd strings survive."""
    made = make_account_archive(tmp_path, "bob", size_scale=0.05, seed=2)
    dumps: dict[str, bytes] = {}
    with made.path.open("rb") as stream:
        wanted = part_selector([("databases", db) for db in made.db_rows])
        for member, data in iter_members(stream, wanted, top=made.top):
            dumps[member.name] = data.read()
    for db, tables in made.db_rows.items():
        scratch = f"t_{uuid.uuid4().hex[:10]}"
        create = dumps[f"mysql/{db}.create"].decode().replace(f"`{db}`", f"`{scratch}`")
        _mysql(client, "-e", create)
        try:
            _mysql(client, "--binary-mode", scratch, stdin=dumps[f"mysql/{db}.sql"])
            for table, rows in tables.items():
                count = f"SELECT COUNT(*) FROM `{table}`"
                assert _mysql(client, scratch, "-e", count).strip() == str(rows)
            if "wp_options" in tables:
                stored = _mysql(
                    client, scratch, "-e", "SELECT HEX(option_value) FROM wp_options ORDER BY option_id"
                )
                values = {bytes.fromhex(v).decode() for v in stored.split()}
                odd = set(made.db_odd_values[db])
                for text in ("NUL\0inside", "Robert'); DROP TABLE Students;--", "ctrl-Z \x1a end"):
                    assert text in odd, text
                    assert text in values, text
                assert "emoji \U0001f680 and \u00e9\u00e8\u00ea" in values
                assert "line one\nline two\r\nline three" in values
                assert "back\\slash \\n not a newline" in values
        finally:
            _mysql(client, "-e", f"DROP DATABASE `{scratch}`")
