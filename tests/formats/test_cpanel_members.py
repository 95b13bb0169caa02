"""Reading chosen members back for a restore, and ``classify`` agreeing with the indexer."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from destinations.formats.cpanel import (
    classify,
    iter_members,
    part_selector,
    read_archive,
)
from destinations.formats.cpanel.tarsafe import ArchiveError
from tests.support.cpanel_archives import GeneratedArchive, make_account_archive

CONTENT_DERIVED = {"db_users", "ftp_accounts"}  # one file, items found in its lines


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[GeneratedArchive, GeneratedArchive]:
    out = tmp_path_factory.mktemp("members")
    (out / "a").mkdir()
    (out / "b").mkdir()
    folder = make_account_archive(out / "a", "bob", style="cpmove", seed=4, size_scale=0.2)
    nested = make_account_archive(out / "b", "bob", style="cpmove", seed=4, size_scale=0.2, homedir_tar=True)
    return folder, nested


def _read(made: GeneratedArchive, select: object) -> dict[str, tuple[str, bytes, str]]:
    got: dict[str, tuple[str, bytes, str]] = {}
    with made.path.open("rb") as stream:
        for member, data in iter_members(stream, select, top=made.top):  # type: ignore[arg-type]
            got[member.name] = (member.type, data.read(), member.target)
    return got


@pytest.mark.parametrize("which", [0, 1], ids=["homedir_folder", "homedir_tar"])
def test_classify_gives_the_indexer_s_parts_and_sizes(
    pair: tuple[GeneratedArchive, GeneratedArchive], which: int
) -> None:
    """GIVEN every member read back WHEN grouped with classify THEN the groups are the index's parts."""
    made = pair[which]
    with made.path.open("rb") as stream:
        index = read_archive(stream)
    totals: dict[tuple[str, str], int] = {}
    for name, (kind, data, _) in _read(made, lambda rel: True).items():
        assert kind != "file" or data is not None
        for key in classify(name):
            if "*" not in key[1]:
                totals[key] = totals.get(key, 0) + (len(data) if kind == "file" else 0)
    indexed = {(p.kind, p.name): p.size for p in index.parts if p.kind not in CONTENT_DERIVED}
    boxes_without_maildir = {k for k, size in indexed.items() if k[0] == "email_accounts" and k not in totals}
    assert boxes_without_maildir == {("email_accounts", "empty@bobsite.com")}
    assert totals == {k: v for k, v in indexed.items() if k not in boxes_without_maildir}


def test_selecting_a_database_yields_exactly_its_files(
    pair: tuple[GeneratedArchive, GeneratedArchive],
) -> None:
    made = pair[0]
    got = _read(made, part_selector([("databases", "bob_wp")]))
    assert set(got) == {"mysql/bob_wp.sql", "mysql/bob_wp.create", "mysql-timestamps/bob_wp"}
    assert sum(len(data) for _, data, _ in got.values()) == made.parts[("databases", "bob_wp")]
    assert got["mysql/bob_wp.sql"][1].startswith(b"-- MariaDB dump")


def test_selecting_a_mailbox_brings_the_domain_files_and_only_that_maildir(
    pair: tuple[GeneratedArchive, GeneratedArchive],
) -> None:
    made = pair[1]  # homedir.tar: members come back as homedir/...
    got = _read(made, part_selector([("email_accounts", "info@bobsite.com")]))
    assert {
        "homedir/etc/bobsite.com/passwd",
        "homedir/etc/bobsite.com/shadow",
        "homedir/etc/bobsite.com/quota",
    } <= set(got)
    maildir = {n for n in got if n.startswith("homedir/mail/")}
    assert maildir
    assert all(n.startswith("homedir/mail/bobsite.com/info") for n in maildir)
    assert not any("shop-bob.org" in n for n in got)
    maildir_bytes = sum(len(d) for n, (t, d, _) in got.items() if n in maildir and t == "file")
    assert maildir_bytes == made.parts[("email_accounts", "info@bobsite.com")]


def test_selecting_a_db_user_or_ftp_login_brings_the_shared_file(
    pair: tuple[GeneratedArchive, GeneratedArchive],
) -> None:
    got = _read(pair[0], part_selector([("db_users", "bob_ro"), ("ftp_accounts", "bob_logs")]))
    assert set(got) == {"mysql.sql", "mysql.sql-auth.json", "proftpdpasswd"}
    assert b"TO 'bob_ro'@'%'" in got["mysql.sql"][1]


def test_single_home_file_reads_the_same_from_homedir_tar_and_homedir_folder(
    pair: tuple[GeneratedArchive, GeneratedArchive],
) -> None:
    wanted = {"homedir/public_html/index.php", "homedir/public_html/index-copy.php", "homedir/access-logs"}
    a = _read(pair[0], wanted.__contains__)
    b = _read(pair[1], wanted.__contains__)
    assert a == b
    assert set(a) == wanted
    assert a["homedir/public_html/index-copy.php"] == ("hardlink", b"", "homedir/public_html/index.php")
    assert a["homedir/access-logs"][0] == "symlink"


def test_member_data_read_in_pieces_matches_whole_reads(
    pair: tuple[GeneratedArchive, GeneratedArchive],
) -> None:
    made = pair[0]
    name = "homedir/sizes/bytes-1048577"
    whole = _read(made, lambda rel: rel == name)[name][1]
    pieces: list[bytes] = []
    with made.path.open("rb") as stream:
        for member, data in iter_members(stream, lambda rel: rel == name, top=made.top):
            assert member.size == 1048577
            buffer = bytearray(4096)
            while count := data.readinto(buffer):
                pieces.append(bytes(buffer[:count]))
    assert b"".join(pieces) == whole
    assert len(whole) == 1048577


def test_members_outside_the_top_folder_are_not_yielded() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in ("bob/cp/bob", "other/cp/eve", "bob/homedir/x"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"1"))
    out.seek(0)
    names = [m.name for m, _ in iter_members(out, lambda rel: True, top="bob/")]
    assert names == ["cp/bob", "homedir/x"]


def test_cut_archive_raises_while_the_cut_member_is_read(tmp_path: Path) -> None:
    made = make_account_archive(tmp_path, "bob", compressed=False, size_scale=0.05)
    raw = made.path.read_bytes()
    start = raw.index(b"bob/homedir/sizes/bytes-1048577")
    stream = io.BytesIO(raw[: start + 512 + 4096])
    members = iter_members(stream, lambda rel: True, top="bob/")
    with pytest.raises(ArchiveError):
        [data.read() for _, data in members]
