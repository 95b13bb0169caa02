"""Finding cPanel account archives in a recursive listing of a destination."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

from destinations.formats.cpanel import Candidate, IterStream, discover, read_archive
from tests.support.cpanel_archives import make_destination_tree

MTIME = datetime(2025, 7, 10, 12, 0, tzinfo=UTC)


def _by_path(entries: list[tuple[str, int, datetime | None]]) -> dict[str, Candidate]:
    return {c.path: c for c in discover(entries)}


def test_every_layout_is_found_with_its_date_and_account_hint() -> None:
    """GIVEN one archive of each layout WHEN discovered THEN each has its layout, date and hint."""
    entries = [
        ("2025-07-04/accounts/bob.tar.gz", 10, MTIME),
        ("2025-07-04/accounts/carol.tar", 11, MTIME),
        ("weekly/2025-07-06/accounts/bob.tar.gz", 12, MTIME),
        ("monthly/2025-07-01/accounts/bob.tar", 13, MTIME),
        ("cpbackup/daily/dave.tar.gz", 14, MTIME),
        ("cpbackup/weekly/dave.tar.gz", 15, MTIME),
        ("cpbackup/monthly/dave.tar", 16, MTIME),
        ("cpmove-erin.tar.gz", 17, MTIME),
        ("deep/inside/cpmove-frank.tar", 18, None),
        ("manual/backup-7.9.2025_03-04-05_gina.tar.gz", 19, MTIME),
        ("backup-12.31.2024_23-59-58_hank.tar", 20, MTIME),
    ]
    found = {c.path: c for c in discover(entries)}
    assert set(found) == {path for path, _, _ in entries}
    expect = {
        "2025-07-04/accounts/bob.tar.gz": ("daily", datetime(2025, 7, 4, tzinfo=UTC), "bob", True),
        "2025-07-04/accounts/carol.tar": ("daily", datetime(2025, 7, 4, tzinfo=UTC), "carol", False),
        "weekly/2025-07-06/accounts/bob.tar.gz": ("weekly", datetime(2025, 7, 6, tzinfo=UTC), "bob", True),
        "monthly/2025-07-01/accounts/bob.tar": ("monthly", datetime(2025, 7, 1, tzinfo=UTC), "bob", False),
        "cpbackup/daily/dave.tar.gz": ("legacy_daily", MTIME, "dave", True),
        "cpbackup/weekly/dave.tar.gz": ("legacy_weekly", MTIME, "dave", True),
        "cpbackup/monthly/dave.tar": ("legacy_monthly", MTIME, "dave", False),
        "cpmove-erin.tar.gz": ("cpmove", MTIME, "erin", True),
        "deep/inside/cpmove-frank.tar": ("cpmove", None, "frank", False),
        "manual/backup-7.9.2025_03-04-05_gina.tar.gz": (
            "user_backup",
            datetime(2025, 7, 9, 3, 4, 5, tzinfo=UTC),
            "gina",
            True,
        ),
        "backup-12.31.2024_23-59-58_hank.tar": (
            "user_backup",
            datetime(2024, 12, 31, 23, 59, 58, tzinfo=UTC),
            "hank",
            False,
        ),
    }
    for path, (layout, date, hint, compressed) in expect.items():
        c = found[path]
        assert (c.layout, c.date, c.account_hint, c.compressed) == (layout, date, hint, compressed), path
        assert c.parts == (path,)
        assert not c.split
        assert not c.incomplete


def test_backup_incomplete_marks_only_its_own_date_folder() -> None:
    entries = [
        ("2025-07-04/accounts/bob.tar.gz", 1, MTIME),
        ("2025-07-05/accounts/bob.tar.gz", 1, MTIME),
        ("2025-07-05/backup_incomplete", 0, MTIME),
        ("weekly/2025-07-05/accounts/bob.tar.gz", 1, MTIME),
    ]
    found = {c.path: c.incomplete for c in discover(entries)}
    assert found == {
        "2025-07-04/accounts/bob.tar.gz": False,
        "2025-07-05/accounts/bob.tar.gz": True,
        "weekly/2025-07-05/accounts/bob.tar.gz": False,
    }


def test_metadata_system_files_and_strangers_are_ignored() -> None:
    entries = [
        ("2025-07-04/accounts/.master.meta", 5, MTIME),
        ("2025-07-04/system/system_files.tar", 5, MTIME),
        ("2025-07-04/system/cpmove-root.tar.gz", 5, MTIME),
        ("2025-07-04/accounts/bob/homedir/x.tar.gz", 5, MTIME),  # incremental folder
        ("2025-13-45/accounts/bob.tar.gz", 5, MTIME),  # not a date
        ("notes/readme.txt", 5, MTIME),
        ("bob.tar.gz", 5, MTIME),  # a bare name is not a cPanel layout
        ("cpmove-bob.tar.gz.tmp", 5, MTIME),
        ("cpmove-bob.zip", 5, MTIME),
    ]
    assert discover(entries) == []


def test_user_backup_dates_need_no_zero_padding_and_bad_ones_fall_back_to_mtime() -> None:
    found = _by_path(
        [
            ("backup-1.2.2025_00-00-09_ann.tar.gz", 1, MTIME),
            ("backup-13.40.2025_00-00-09_bea.tar.gz", 1, MTIME),
        ]
    )
    ann, bea = found["backup-1.2.2025_00-00-09_ann.tar.gz"], found["backup-13.40.2025_00-00-09_bea.tar.gz"]
    assert ann.date == datetime(2025, 1, 2, 0, 0, 9, tzinfo=UTC)
    assert bea.date == MTIME
    assert bea.account_hint == "bea"


def test_naive_mtimes_are_taken_as_utc() -> None:
    (c,) = discover([("cpmove-bob.tar.gz", 1, datetime(2025, 1, 1, 8, 0))])
    assert c.date == datetime(2025, 1, 1, 8, 0, tzinfo=UTC)


def test_split_parts_are_grouped_in_order_with_their_total_size() -> None:
    entries = [
        ("cpmove-bob.tar.gz.part00003", 50, MTIME),
        ("cpmove-bob.tar.gz.part00001", 100, MTIME),
        ("cpmove-bob.tar.gz.part00002", 100, datetime(2025, 7, 11, tzinfo=UTC)),
        ("2025-07-04/accounts/carol.tar.gz.part00001", 100, MTIME),
        ("2025-07-04/accounts/carol.tar.gz.part00002", 7, MTIME),
    ]
    found = {c.path: c for c in discover(entries)}
    bob = found["cpmove-bob.tar.gz"]
    assert bob.split
    assert not bob.incomplete
    assert bob.parts == (
        "cpmove-bob.tar.gz.part00001",
        "cpmove-bob.tar.gz.part00002",
        "cpmove-bob.tar.gz.part00003",
    )
    assert (bob.size, bob.mtime, bob.layout, bob.account_hint) == (
        250,
        datetime(2025, 7, 11, tzinfo=UTC),
        "cpmove",
        "bob",
    )
    carol = found["2025-07-04/accounts/carol.tar.gz"]
    assert (carol.layout, carol.date, carol.split) == ("daily", datetime(2025, 7, 4, tzinfo=UTC), True)


def test_split_archive_with_a_missing_part_is_incomplete() -> None:
    (c,) = discover(
        [
            ("cpmove-bob.tar.gz.part00001", 100, MTIME),
            ("cpmove-bob.tar.gz.part00003", 100, MTIME),
        ]
    )
    assert c.split
    assert c.incomplete
    assert c.notes


def test_generated_destination_tree_is_discovered_completely(tmp_path: Path) -> None:
    """GIVEN the generator's destination tree WHEN its files are listed THEN every archive is found."""
    made = make_destination_tree(tmp_path, accounts=2, size_scale=0.05)
    entries = [
        (p.relative_to(tmp_path).as_posix(), p.stat().st_size, MTIME)
        for p in tmp_path.rglob("*")
        if p.is_file()
    ]
    found = {c.path: c for c in discover(entries)}
    assert {e.path: (e.layout, e.incomplete, e.split) for e in made} == {
        path: (c.layout, c.incomplete, c.split) for path, c in found.items()
    }
    # A split archive reads as one stream when its parts are chained in order.
    split = next(c for c in found.values() if c.split)
    assert len(split.parts) == 3
    downloads = ((tmp_path / p).read_bytes() for p in split.parts)  # what an FTP download yields
    index = read_archive(IterStream(itertools.chain(downloads)))
    assert index.complete
    assert index.flags == set()
    assert index.account == split.account_hint
