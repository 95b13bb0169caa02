"""Hostile archives: flagged, their bad members never listed or yielded, no exception escapes."""

from __future__ import annotations

import gzip
import io
import random
from pathlib import Path
from typing import BinaryIO

import pytest

from destinations.formats.cpanel import (
    ArchiveError,
    ArchiveIndex,
    Limits,
    Problem,
    iter_members,
    read_archive,
)
from tests.support.cpanel_archives import (
    HOSTILE_KINDS,
    HostileArchive,
    make_account_archive,
    make_hostile_archive,
)

LIMITS = Limits(max_members=1000)


def _index(h: HostileArchive) -> ArchiveIndex:
    with h.path.open("rb") as stream:
        return read_archive(stream, limits=LIMITS, account_hint="bob")


def _everything_named(index: ArchiveIndex) -> set[str]:
    names = {"homedir/" + e.path for e in index.home_entries}
    for part in index.parts:
        names.add(f"{part.kind}:{part.name}")
    return names


@pytest.mark.parametrize("kind", HOSTILE_KINDS)
def test_hostile_archive_is_flagged_and_its_bad_members_are_left_out(tmp_path: Path, kind: str) -> None:
    h = make_hostile_archive(tmp_path / f"{kind}.tar.gz", kind)
    index = _index(h)
    assert h.flag in index.flags, (index.flags, index.problems)
    assert index.problems
    listed = _everything_named(index)
    for bad in h.bad:
        assert "homedir/" + bad.removeprefix("homedir/") not in listed or not bad.startswith("homedir/"), bad
        assert bad not in listed, bad
    home = {e.path for e in index.home_entries}
    for good in h.good:
        assert good in home, good


@pytest.mark.parametrize("kind", HOSTILE_KINDS)
def test_hostile_members_are_never_yielded_for_restore(tmp_path: Path, kind: str) -> None:
    h = make_hostile_archive(tmp_path / f"{kind}.tar.gz", kind)
    seen: list[str] = []  # members handed over whole (a cut one raises while its data is read)
    problems: list[Problem] = []
    raised = ""
    try:
        with h.path.open("rb") as stream:
            for member, data in iter_members(
                stream, lambda rel: True, top="bob/", limits=LIMITS, problems=problems
            ):
                data.read()
                seen.append(member.name)
    except ArchiveError as exc:
        raised = exc.flag
    stops_reading = h.flag in {"truncated", "not_tar", "too_many_members", "absurd_size"}
    assert raised == (h.flag if stops_reading else "")
    assert problems or h.flag == "account_mismatch"  # the account is the indexer's business
    for bad in h.bad:
        assert bad not in seen, bad
    for name in seen:
        assert not name.startswith("/")
        assert ".." not in name.split("/")
        assert "\0" not in name


def test_symlink_pointing_outside_the_home_is_listed_but_nothing_is_written_through_it(
    tmp_path: Path,
) -> None:
    h = make_hostile_archive(tmp_path / "s.tar.gz", "symlink_write")
    entries = {e.path: e for e in _index(h).home_entries}
    assert entries["etc-link"].type == "symlink"
    assert entries["etc-link"].target == "/etc"
    assert not [p for p in entries if p.startswith("etc-link/")]


def test_reading_stops_at_the_member_limit(tmp_path: Path) -> None:
    h = make_hostile_archive(tmp_path / "many.tar.gz", "too_many_members")
    index = _index(h)
    assert index.member_count == LIMITS.max_members
    assert not index.complete
    assert len([e for e in index.home_entries if e.path.startswith("many/")]) < 1000


def test_truncated_member_is_not_listed_but_everything_before_it_is(tmp_path: Path) -> None:
    h = make_hostile_archive(tmp_path / "cut.tar.gz", "truncated_gzip")
    index = _index(h)
    assert index.account == "bob"
    assert "big.bin" not in {e.path for e in index.home_entries}
    assert any("cut short" in p.reason for p in index.problems)


def _read_everything(stream: BinaryIO) -> None:
    for _member, data in iter_members(stream, lambda rel: True, top="bob/"):
        while data.read(65536):
            pass


def test_truncated_archive_raises_archive_error_when_restoring(tmp_path: Path) -> None:
    h = make_hostile_archive(tmp_path / "cut.tar.gz", "truncated_gzip")
    with h.path.open("rb") as stream, pytest.raises(ArchiveError) as caught:
        _read_everything(stream)
    assert caught.value.flag == "truncated"


def test_damaged_or_cut_archives_never_raise(tmp_path: Path) -> None:
    """GIVEN a real archive cut or bit-flipped at many places WHEN indexed THEN no exception escapes."""
    made = make_account_archive(tmp_path, "bob", size_scale=0.05, seed=9)
    blob = made.path.read_bytes()
    raw = gzip.decompress(blob)
    rng = random.Random(5)
    cases = [blob[: rng.randrange(len(blob))] for _ in range(15)]
    cases += [raw[: rng.randrange(len(raw))] for _ in range(15)]
    for _ in range(25):
        damaged = bytearray(raw if rng.random() < 0.7 else blob)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        cases.append(bytes(damaged))
    cases += [b"", b"\x1f", b"\x1f\x8b", bytes(512), bytes(1024), b"\x1f\x8b" + bytes(30)]
    for case in cases:
        index = read_archive(io.BytesIO(case))
        assert isinstance(index, ArchiveIndex)
        if len(case) < len(blob) // 2 and case in (blob[: len(case)], raw[: len(case)]):
            assert not index.complete


def test_archive_with_only_a_wrong_checksum_header_is_not_a_tar() -> None:
    header = bytearray(512)
    header[0:4] = b"evil"
    header[148:156] = b"0000001\0"
    index = read_archive(io.BytesIO(bytes(header) + bytes(1024)))
    assert "not_tar" in index.flags
    assert index.home_entries == []
