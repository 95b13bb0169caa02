"""Generic hostile-tar rules shared by the indexer and the restore."""

from __future__ import annotations

import io
import tarfile

import pytest

from destinations.formats.cpanel.tarsafe import (
    IterStream,
    Limits,
    UnsafeName,
    link_target_inside,
    normalize_name,
    open_tar,
    printable,
)


@pytest.mark.parametrize(
    ("name", "normal"),
    [
        ("a/b/c", "a/b/c"),
        ("./a/b/", "a/b"),
        ("a//b/./c", "a/b/c"),
        ("./", ""),
        (".hidden/.x", ".hidden/.x"),
        ("a/..b/c..", "a/..b/c.."),
        ("-rf", "-rf"),
        ("latin1-\udce9", "latin1-\udce9"),
        ("back\\slash", "back\\slash"),
    ],
)
def test_safe_names_are_normalised(name: str, normal: str) -> None:
    assert normalize_name(name) == normal


@pytest.mark.parametrize(
    "name",
    ["/etc/passwd", "//etc", "../x", "a/../../x", "a/..", "C:/Windows", "c:evil", "a\0b", "a/" * 3000],
)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafeName):
        normalize_name(name)


@pytest.mark.parametrize(
    ("link", "target", "inside"),
    [
        ("www", "public_html", True),
        ("a/b/link", "../c", True),
        ("a/link", "../../etc", False),
        ("access-logs", "/usr/local/apache/domlogs/bob", False),
        ("x", "", False),
        ("a/link", "./../b/../c", True),
    ],
)
def test_link_targets_are_judged_lexically(link: str, target: str, inside: bool) -> None:
    assert link_target_inside(link, target) is inside


def test_printable_escapes_control_characters_and_undecodable_bytes() -> None:
    assert printable("a\nb\0c-\udce9") == "a\\nb\\x00c-\\xe9"


def test_iter_stream_returns_short_reads_until_the_end() -> None:
    stream = IterStream([b"abc", b"", b"defgh"])
    assert stream.read(2) == b"ab"
    assert stream.read(5) == b"c"
    assert stream.read(-1) == b"defgh"
    assert stream.read(1) == b""


def _pax_archive(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.pax_headers = {"comment": "x" * 300}
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_pax_long_names_are_read() -> None:
    name = "dir/" + "ü" * 200 + ".txt"
    reader = open_tar(io.BytesIO(_pax_archive(name, b"hello")))
    members = list(reader)
    assert [(m.name, m.size) for m in members] == [(name, 5)]
    assert reader.complete
    assert not reader.state.flags


def test_member_over_the_size_limit_stops_reading() -> None:
    raw = _pax_archive("big", b"x" * 2000)
    reader = open_tar(io.BytesIO(raw), limits=Limits(max_member_size=1000))
    assert list(reader) == []
    assert "absurd_size" in reader.state.flags
    assert reader.state.stopped


def test_nul_hidden_in_a_pax_path_is_refused() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("ok")
        info.pax_headers = {"path": "ok\0/../../etc/passwd"}
        tar.addfile(info, io.BytesIO(b""))
    reader = open_tar(io.BytesIO(out.getvalue()))
    assert list(reader) == []
    assert "unsafe_members" in reader.state.flags
