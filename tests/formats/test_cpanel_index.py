"""Indexing cPanel account archives: account, parts and sizes, home listing, texts.

Expectations come from the generator's manifest (what it wrote), never from the code under test.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from destinations.formats.cpanel import (
    PART_KINDS,
    ArchiveIndex,
    IterStream,
    Limits,
    read_archive,
)
from tests.support.cpanel_archives import GeneratedArchive, make_account_archive

STYLES = {
    "whm_gz": {"style": "whm"},
    "cpmove_tar": {"style": "cpmove", "compressed": False},
    "user_backup_gz": {"style": "user_backup"},
    "cpmove_homedir_tar_gz": {"style": "cpmove", "homedir_tar": True},
    "whm_homedir_tar_plain": {"style": "whm", "homedir_tar": True, "compressed": False},
}


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GeneratedArchive]:
    out = tmp_path_factory.mktemp("cpanel")
    made = {}
    for key, kwargs in STYLES.items():
        folder = out / key
        folder.mkdir()
        made[key] = make_account_archive(folder, "bob", seed=3, size_scale=0.3, **kwargs)  # type: ignore[arg-type]
    return made


def index_of(path: Path, **kwargs: object) -> ArchiveIndex:
    with path.open("rb") as stream:
        return read_archive(stream, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", list(STYLES))
def test_parts_and_their_sizes_match_what_was_written(
    archives: dict[str, GeneratedArchive], key: str
) -> None:
    made = archives[key]
    index = index_of(made.path, account_hint="bob")
    assert index.flags == set(), index.problems
    assert index.complete
    assert {(p.kind, p.name): p.size for p in index.parts} == made.parts


def test_every_part_kind_is_present_with_several_items_where_the_format_has_them(
    archives: dict[str, GeneratedArchive],
) -> None:
    index = index_of(archives["whm_gz"].path)
    names: dict[str, list[str]] = {}
    for part in index.parts:
        names.setdefault(part.kind, []).append(part.name)
    assert set(names) == set(PART_KINDS)
    for single in ("homedir", "cron", "domains", "account_settings"):
        assert names[single] == [""]
    assert names["databases"] == ["bob_empty", "bob_shop", "bob_wp"]
    assert names["db_users"] == ["bob", "bob_ro", "bob_shop", "bob_wp"]
    assert names["email_accounts"] == [
        "admin@shop-bob.org",
        "empty@bobsite.com",
        "info@bobsite.com",
        "sales@bobsite.com",
    ]
    assert names["ftp_accounts"] == ["bob", "bob_logs", "deploy@shop-bob.org", "ftpuser@bobsite.com"]
    assert names["dns_zones"] == ["bobsite.com", "bobsite.net", "shop-bob.org"]
    assert names["ssl"] == ["bobsite.com", "shop-bob.org"]
    assert names["forwarders_filters"] == ["bobsite.com", "bobsite.net", "shop-bob.org"]


def test_top_folder_and_account_settings_are_read(archives: dict[str, GeneratedArchive]) -> None:
    for made in archives.values():
        index = index_of(made.path)
        assert index.top == made.top
        assert index.account == "bob"
        assert index.account_info == made.account_info
        assert index.compressed == made.compressed
        assert index.homedir_tar == made.homedir_tar
        assert index.total_size >= made.uncompressed_size - 10240


def test_account_comes_from_the_cp_file_not_from_the_archive_name(tmp_path: Path) -> None:
    """GIVEN bob.tar.gz (top folder bob/) holding cp/alice WHEN indexed THEN the account is alice."""
    made = make_account_archive(tmp_path, "bob", cp_user="alice", size_scale=0.05)
    assert made.path.name == "bob.tar.gz"
    index = index_of(made.path, account_hint="bob")
    assert index.account == "alice"
    assert index.top == "bob/"
    assert "account_mismatch" in index.flags
    assert index.part("db_users", "alice_wp") is not None
    without_hint = index_of(made.path)
    assert without_hint.account == "alice"
    assert "account_mismatch" not in without_hint.flags


@pytest.mark.parametrize("key", list(STYLES))
def test_home_listing_holds_every_entry_written(archives: dict[str, GeneratedArchive], key: str) -> None:
    made = archives[key]
    index = index_of(made.path)
    listed = {e.path: (e.type, e.size, e.target) for e in index.home_entries}
    assert listed == made.home
    assert {e.path: e.mode for e in index.home_entries} == made.home_modes
    assert not any(e.implied for e in index.home_entries)  # the generator writes every folder


def test_homedir_tar_archive_is_listed_like_a_homedir_folder(archives: dict[str, GeneratedArchive]) -> None:
    folder = index_of(archives["whm_gz"].path)
    nested = index_of(archives["cpmove_homedir_tar_gz"].path)
    assert nested.homedir_tar
    assert not folder.homedir_tar
    assert [(e.path, e.type, e.size, e.mtime, e.mode, e.target) for e in nested.home_entries] == [
        (e.path, e.type, e.size, e.mtime, e.mode, e.target) for e in folder.home_entries
    ]
    assert nested.part("homedir") is not None
    assert folder.part("homedir") is not None
    assert nested.part("homedir").size == folder.part("homedir").size  # type: ignore[union-attr]
    assert nested.part("email_accounts", "info@bobsite.com").size == (  # type: ignore[union-attr]
        folder.part("email_accounts", "info@bobsite.com").size  # type: ignore[union-attr]
    )


def test_tar_and_tar_gz_of_the_same_archive_index_alike(archives: dict[str, GeneratedArchive]) -> None:
    made = archives["whm_gz"]
    plain = io.BytesIO(gzip.decompress(made.path.read_bytes()))
    a, b = index_of(made.path), read_archive(plain)
    assert a.compressed
    assert not b.compressed
    assert (a.parts, a.home_entries, a.account_info, a.flags) == (
        b.parts,
        b.home_entries,
        b.account_info,
        b.flags,
    )


def test_short_reads_and_concatenated_gzip_members_change_nothing(
    archives: dict[str, GeneratedArchive],
) -> None:
    made = archives["whm_gz"]
    raw = gzip.decompress(made.path.read_bytes())
    expected = read_archive(io.BytesIO(raw))
    cut = len(raw) // 3
    multi = gzip.compress(raw[:cut], mtime=0) + gzip.compress(raw[cut:], mtime=0)  # like pigz --independent
    tiny_reads = IterStream(multi[i : i + 7] for i in range(0, len(multi), 7))
    got = read_archive(tiny_reads)
    assert (got.parts, got.home_entries, got.flags) == (expected.parts, expected.home_entries, expected.flags)


def test_odd_file_names_round_trip_to_their_original_bytes(archives: dict[str, GeneratedArchive]) -> None:
    index = index_of(archives["whm_gz"].path)
    names = {os.fsencode(e.path) for e in index.home_entries}
    for raw in (
        b"odd/with space.txt",
        b"odd/new\nline.txt",
        b"odd/latin1-\xe9t\xe9.txt",
        "odd/unicodé-日本語.txt".encode(),
        b"odd/-leading-dash",
        b"odd/" + b"x" * 150 + b".txt",
        b"odd/tab\tand\\backslash",
        b"odd/quote'\"names",
    ):
        assert raw in names, raw
    deep = [e for e in index.home_entries if e.path.endswith("file-at-the-bottom.txt")]
    assert len(deep) == 1
    assert len(deep[0].path) > 100
    (link,) = [e for e in index.home_entries if e.path == "odd/long-target-link"]
    assert link.type == "symlink"
    assert link.target == "../" + "t" * 120 + "/target"


def test_access_logs_symlink_and_hard_link_are_ordinary_entries(
    archives: dict[str, GeneratedArchive],
) -> None:
    index = index_of(archives["whm_gz"].path)
    entries = {e.path: e for e in index.home_entries}
    assert entries["access-logs"].type == "symlink"
    assert entries["access-logs"].target == "/usr/local/apache/domlogs/bob"
    assert entries["public_html/index-copy.php"].type == "hardlink"
    assert entries["public_html/index-copy.php"].target == "public_html/index.php"
    assert entries["tmp"].type == "dir"  # an empty folder
    assert index.flags == set()
    assert not any("access-logs" in p.member for p in index.problems)


def test_small_text_parts_keep_their_text_and_never_a_secret(archives: dict[str, GeneratedArchive]) -> None:
    made = archives["whm_gz"]
    index = index_of(made.path)
    for key, pieces in made.texts.items():
        part = index.part(*key)  # type: ignore[arg-type]
        assert part is not None, key
        assert part.text is not None, key
        for piece in pieces:
            assert piece in part.text, (key, piece)
    for part in index.parts:
        if part.kind in (
            "ssl",
            "db_users",
            "ftp_accounts",
            "account_settings",
            "email_accounts",
            "databases",
        ):
            assert part.text is None, part
    kept = [p.text or "" for p in index.parts] + [f"{k}={v}" for k, v in index.account_info.items()]
    for secret in made.secrets:
        assert not any(secret in text for text in kept), secret


def test_texts_are_capped(archives: dict[str, GeneratedArchive]) -> None:
    index = index_of(archives["whm_gz"].path, limits=Limits(max_text_size=100))
    zone = index.part("dns_zones", "bobsite.com")
    assert zone is not None
    assert zone.text is not None
    assert len(zone.text.encode()) <= 100
    assert zone.text_truncated
    assert zone.size > 100  # the size is still the whole file's


def _tar(members: list[tuple[str, bytes | None]], **kwargs: object) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_folders_implied_by_deeper_members_are_listed() -> None:
    raw = _tar([("cpmove-bob/cp/bob", b"USER=bob\n"), ("cpmove-bob/homedir/a/b/c.txt", b"abc")])
    index = read_archive(io.BytesIO(raw))
    listed = [(e.path, e.type, e.implied) for e in index.home_entries]
    assert listed == [("a", "dir", True), ("a/b", "dir", True), ("a/b/c.txt", "file", False)]


def test_account_files_at_the_archive_root_are_found() -> None:
    raw = _tar(
        [("homedir", None), ("homedir/index.html", b"hi"), ("cp", None), ("cp/bob", b"USER=bob\nDNS=b.com\n")]
    )
    index = read_archive(io.BytesIO(raw))
    assert (index.top, index.account) == ("", "bob")
    assert [e.path for e in index.home_entries] == ["index.html"]
    assert index.account_info == {"USER": "bob", "DNS": "b.com"}


def test_archive_without_cp_file_has_no_account() -> None:
    raw = _tar([("bob/homedir/index.html", b"hi"), ("bob/mysql/bob_db.sql", b"--\n")])
    index = read_archive(io.BytesIO(raw))
    assert index.account is None
    assert "no_account" in index.flags
    assert index.top == "bob/"
    assert index.part("databases", "bob_db") is not None


def test_two_account_files_make_the_account_ambiguous() -> None:
    raw = _tar([("bob/cp/bob", b"USER=bob\n"), ("bob/cp/alice", b"USER=alice\n")])
    index = read_archive(io.BytesIO(raw))
    assert index.account is None
    assert {"ambiguous_account", "no_account"} <= index.flags


def test_cron_part_is_absent_when_the_crontab_says_there_is_none() -> None:
    raw = _tar([("bob/cp/bob", b"USER=bob\n"), ("bob/cron/bob", b"no crontab for bob\n")])
    index = read_archive(io.BytesIO(raw))
    assert index.part("cron") is None
    assert index.part("account_settings") is not None
