"""Streaming reader for untrusted tar and tar.gz data.

An archive on a destination is data from another machine, so this module reads it as hostile:

* one sequential pass over a file-like that only has ``read(n)``; nothing is seeked, nothing is
  written to disk, and memory stays bounded (decompression happens in 1 MiB blocks, so a
  "zip bomb" costs time, never memory);
* every member name is normalised and refused when it is absolute, carries a drive prefix, a
  ``..`` component or a NUL byte (also a NUL hidden inside a fixed-size header field), or is
  longer than ``Limits.max_name_bytes``;
* hard links must name an earlier accepted file; nothing may be written through (or replace)
  an earlier symbolic link; devices and FIFOs are refused; sizes and member counts are capped.

A refused member is reported in ``ReadState.flags`` and ``ReadState.problems`` and never
yielded. Reading stops at hard limits and at the first sign of truncation or corruption; the
reader never raises for bad archive content (``MemberData.read`` is the one exception: a member
whose data is cut short raises ``ArchiveError``, because a restore must not write half a file
and call it done). Exceptions raised by the caller's stream propagate unchanged.

Why not ``tarfile`` in stream mode: it silently truncates names at a NUL byte, ends iteration
without a word at a corrupt or missing header (so a cut archive looks complete), copies its
whole buffer on every header read when the buffer is large, and cannot read a nested tar from
the middle of a stream while checking names against the outer archive. The header format is
small; parsing it here keeps every one of those decisions in sight.

This package's __init__ is the reader's public API. Modules: common (limits, members,
problems, the checks on names), stream (byte sources, gzip), header (header fields), reader
(the members and their data).
"""

from .common import (
    DEFAULT_LIMITS,
    FATAL_FLAGS,
    ArchiveError,
    Limits,
    Member,
    MemberType,
    Problem,
    ReadState,
    UnsafeName,
    link_target_inside,
    normalize_name,
    printable,
)
from .reader import MemberData, TarReader, open_tar
from .stream import ByteStream, IterStream

__all__ = [
    "DEFAULT_LIMITS",
    "FATAL_FLAGS",
    "ArchiveError",
    "ByteStream",
    "IterStream",
    "Limits",
    "Member",
    "MemberData",
    "MemberType",
    "Problem",
    "ReadState",
    "TarReader",
    "UnsafeName",
    "link_target_inside",
    "normalize_name",
    "open_tar",
    "printable",
]
