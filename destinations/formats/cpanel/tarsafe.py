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
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol
from zlib import adler32

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
IN_CHUNK = 256 * 1024  # compressed bytes asked from the caller's stream per read
OUT_CHUNK = 1024 * 1024  # most decompressed bytes produced per zlib call
GZIP_MAGIC = b"\x1f\x8b"
ENCODING = "utf-8"
ERRORS = "surrogateescape"  # undecodable bytes survive as str and round-trip with os.fsencode

MemberType = Literal["file", "dir", "symlink", "hardlink"]

# Flags that mean reading stopped early: the member list is incomplete.
FATAL_FLAGS = frozenset({"truncated", "not_tar", "too_many_members", "absurd_size", "too_large"})
MAX_PROBLEMS = 1000  # problems kept verbatim; the rest are only counted


@dataclass(frozen=True, slots=True)
class Limits:
    """Hard caps for one archive. Exceeding a ``max_member*``/``max_total_size`` cap stops reading."""

    max_members: int = 2_000_000
    max_member_size: int = 1 << 40  # 1 TiB: bigger is a forged header, not a file
    max_total_size: int = 1 << 43  # 8 TiB of uncompressed tar
    max_name_bytes: int = 4096  # PATH_MAX
    max_meta_size: int = 1 << 20  # one pax header or GNU long name
    max_text_size: int = 256 * 1024  # text kept for one part
    max_parse_size: int = 16 << 20  # a metadata file read to list items (mysql.sql, proftpdpasswd, ...)
    max_captured_total: int = 64 << 20  # all text and metadata kept in memory for one archive
    max_trailing: int = 16 << 20  # data after the end-of-archive marker that is still read


DEFAULT_LIMITS = Limits()


class Problem(NamedTuple):
    member: str  # printable member name ("" for the archive as a whole)
    reason: str


class ArchiveError(Exception):
    """The archive cannot be read to the end (truncated, corrupt, over a limit)."""

    def __init__(self, message: str, flag: str = "truncated") -> None:
        super().__init__(message)
        self.message = message
        self.flag = flag


class UnsafeName(ValueError):
    """A member name that must never be used; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ByteStream(Protocol):
    def read(self, n: int, /) -> bytes: ...


class Member(NamedTuple):
    """One accepted archive member.

    ``name`` is normalised: '/'-separated, relative, no '.', '..' or empty components, no
    trailing '/'. ``target`` is a symlink's target exactly as stored, or the normalised name of
    the member a hard link points to; "" otherwise. ``size`` is 0 for everything but files.
    """

    name: str
    type: MemberType
    size: int
    mtime: int
    mode: int
    target: str = ""
    uname: str = ""  # owner and group names as the archive's writer recorded them ("" unknown)
    gname: str = ""


# -- names ------------------------------------------------------------------------------------

_DRIVE = re.compile(r"[A-Za-z]:")


def normalize_name(name: str, *, max_bytes: int = DEFAULT_LIMITS.max_name_bytes) -> str:
    """Return the safe, normalised form of a member name or raise ``UnsafeName``.

    "" is the archive root ("./"). Names are str decoded with surrogateescape.
    """
    if (
        len(name) * 4 <= max_bytes
        and "\0" not in name
        and "//" not in name
        and "/." not in name
        and not name.startswith(("/", "."))
        and name[1:2] != ":"
    ):
        return name.rstrip("/")
    if "\0" in name:
        raise UnsafeName("NUL byte in name")
    if name.startswith("/"):
        raise UnsafeName("absolute name")
    if _DRIVE.match(name):
        raise UnsafeName("drive prefix in name")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise UnsafeName("'..' component in name")
        parts.append(part)
    result = "/".join(parts)
    if len(result.encode(ENCODING, ERRORS)) > max_bytes:
        raise UnsafeName(f"name longer than {max_bytes} bytes")
    return result


def link_target_inside(link_name: str, target: str) -> bool:
    """Whether a symlink at ``link_name`` (normalised) pointing to ``target`` stays inside the root.

    Purely lexical, for a restore that wants to keep only links that cannot leave its target.
    """
    if not target or target.startswith("/") or "\0" in target or _DRIVE.match(target):
        return False
    depth = link_name.count("/")  # folders above the link inside the root
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            depth -= 1
            if depth < 0:
                return False
        else:
            depth += 1
    return True


def printable(name: str, limit: int = 300) -> str:
    """A member name fit for a log line: undecodable bytes as \\xNN, control characters escaped."""
    text = name.encode(ENCODING, ERRORS).decode(ENCODING, "backslashreplace")
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- byte sources -----------------------------------------------------------------------------


class _StreamEnded(Exception):
    """The compressed stream is corrupt or ends before its end marker."""


class _Source:
    """Sequential bytes with cheap skipping; ``_chunk`` supplies the next block ("" at the end)."""

    compressed = False

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0
        self.offset = 0  # bytes delivered so far (read or skipped)

    def _chunk(self) -> bytes:
        raise NotImplementedError

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes, fewer only at the end of the data."""
        pos = self._pos
        end = pos + n
        if end <= len(self._buf):
            self._pos = end
            self.offset += n
            return self._buf[pos:end]
        pieces = [self._buf[pos:]]
        have = len(pieces[0])
        self._buf = b""
        self._pos = 0
        while have < n:
            chunk = self._chunk()
            if not chunk:
                break
            need = n - have
            if len(chunk) > need:
                pieces.append(chunk[:need])
                self._buf = chunk
                self._pos = need
                have = n
            else:
                pieces.append(chunk)
                have += len(chunk)
        self.offset += have
        return b"".join(pieces)

    def skip(self, n: int) -> int:
        """Discard ``n`` bytes without copying them; return how many there were."""
        avail = len(self._buf) - self._pos
        if n <= avail:
            self._pos += n
            self.offset += n
            return n
        done = avail
        self._buf = b""
        self._pos = 0
        while done < n:
            chunk = self._chunk()
            if not chunk:
                break
            need = n - done
            if len(chunk) > need:
                self._buf = chunk
                self._pos = need
                done = n
            else:
                done += len(chunk)
        self.offset += done
        return done


class _PlainSource(_Source):
    def __init__(self, stream: ByteStream, first: bytes) -> None:
        super().__init__()
        self._stream = stream
        self._pending = first

    def _chunk(self) -> bytes:
        if self._pending:
            chunk, self._pending = self._pending, b""
            return chunk
        return bytes(self._stream.read(IN_CHUNK))


class _GzipSource(_Source):
    """gzip (also several concatenated gzip members) decompressed in large blocks.

    zlib drops the GIL while it inflates, so a download thread can fill the caller's stream
    while this thread decompresses.
    """

    compressed = True

    def __init__(self, stream: ByteStream, first: bytes) -> None:
        super().__init__()
        self._stream = stream
        self._raw = first
        self._input_eof = False
        self._member_done = False
        self._finished = False
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.compressed_bytes = len(first)
        self.trailing_garbage = False
        self._error = ""  # met while salvaging: raised on the next call

    def _more_input(self) -> bytes:
        if self._input_eof:
            return b""
        data = bytes(self._stream.read(IN_CHUNK))
        if not data:
            self._input_eof = True
        self.compressed_bytes += len(data)
        return data

    def _salvage(self, backup: zlib._Decompress, data: bytes) -> bytes:
        """Inflate ``data`` in small steps to keep the output that precedes a damaged spot."""
        out: list[bytes] = []
        step = 4096
        try:
            for start in range(0, len(data), step):
                out.append(backup.decompress(data[start : start + step]))
        except zlib.error as exc:
            self._error = f"corrupt gzip data ({exc})"
        else:  # pragma: no cover - the damage reproduced above
            self._error = "corrupt gzip data"
        return b"".join(out)

    def _chunk(self) -> bytes:
        if self._error:
            raise _StreamEnded(self._error)
        while not self._finished:
            if self._member_done:
                while len(self._raw) < 2 and not self._input_eof:
                    self._raw += self._more_input()
                if not self._raw.startswith(GZIP_MAGIC):
                    # gzip(1) also ignores trailing zeros; anything else is noted, never read.
                    self.trailing_garbage = bool(self._raw.strip(b"\0"))
                    self._raw = b""
                    self._finished = True
                    return b""
                self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._member_done = False
            d = self._d
            if d.unconsumed_tail:
                data = d.unconsumed_tail
            elif self._raw:
                data, self._raw = self._raw, b""
            else:
                data = self._more_input()
            backup = d.copy()  # cheap (the 32 KiB window); lets a damaged block be salvaged
            try:
                out = d.decompress(data, OUT_CHUNK)
            except zlib.error:
                out = self._salvage(backup, data)
                if out:
                    return out
                raise _StreamEnded(self._error) from None
            if d.eof:
                self._raw = d.unused_data
                self._member_done = True
            if out:
                return out
            if self._input_eof and not d.unconsumed_tail and not d.eof:
                raise _StreamEnded("the gzip data ends before its end marker")
        return b""


def open_source(stream: ByteStream) -> _Source:
    """Wrap the caller's stream, detecting gzip by its magic bytes."""
    first = bytes(stream.read(IN_CHUNK))
    while 0 < len(first) < 2:
        more = bytes(stream.read(IN_CHUNK))
        if not more:
            break
        first += more
    if first.startswith(GZIP_MAGIC):
        return _GzipSource(stream, first)
    return _PlainSource(stream, first)


class IterStream:
    """Adapts an iterable of byte chunks (an FTP download, split parts chained) to ``read(n)``."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._pending = b""

    def read(self, n: int = -1, /) -> bytes:
        if n < 0:
            rest = self._pending + b"".join(self._it)
            self._pending = b""
            return rest
        while not self._pending:
            chunk = next(self._it, None)
            if chunk is None:
                return b""
            self._pending = bytes(chunk)
        out = self._pending[:n]
        self._pending = self._pending[n:] if len(self._pending) > n else b""
        return out


# -- the tar reader ---------------------------------------------------------------------------


class _BadHeader(Exception):
    pass


@dataclass(slots=True)
class ReadState:
    """What one pass has found; shared by an archive's reader and its nested readers."""

    limits: Limits
    flags: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    member_count: int = 0
    stopped: bool = False
    cut_members: set[str] = field(default_factory=set)  # yielded, but their data is incomplete
    symlinks: set[str] = field(default_factory=set)
    clear_folders: set[str] = field(default_factory=set)  # checked: no symlink on their way
    files: set[str] = field(default_factory=set)

    def problem(self, flag: str | None, member: str, reason: str, *, stop: bool = False) -> None:
        if flag:
            self.flags.add(flag)
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(printable(member), reason))
        if stop:
            self.stopped = True

    @property
    def fatal(self) -> bool:
        return not self.flags.isdisjoint(FATAL_FLAGS)


def _number(data: bytes) -> int:
    if data and data[0] & 0x80:  # GNU base-256
        value = int.from_bytes(data[1:], "big")
        if data[0] == 0xFF:
            value -= 1 << (8 * (len(data) - 1))
        elif data[0] != 0x80:
            raise _BadHeader("bad base-256 number")
        return value
    text = data.split(b"\0", 1)[0].strip()
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise _BadHeader("bad octal number") from None


def _field_has_hidden_bytes(data: bytes) -> bool:
    """True when bytes follow the NUL that ends a fixed-size field (a name with a NUL inside)."""
    cut = data.find(b"\0")
    return cut != -1 and data.count(0, cut) != len(data) - cut


def _field_text(data: bytes) -> str:
    cut = data.find(b"\0")
    if cut != -1:
        data = data[:cut]
    return data.decode(ENCODING, ERRORS)


def _octal(hdr: bytes, start: int, end: int) -> int:
    """A numeric header field; the common "digits then NUL or space" form parses without help."""
    if hdr[end - 1] in (0, 32):
        try:
            return int(hdr[start : end - 1], 8)
        except ValueError:
            pass
    return _number(hdr[start:end])


_ZERO_TAIL = bytes(BLOCK - 345)


def _checksum_ok(hdr: bytes) -> bool:
    # GNU headers leave the last 167 bytes empty: comparing is cheaper than adding them up.
    unsigned = sum(hdr[:148]) + sum(hdr[156:345]) + 256
    if hdr[345:] != _ZERO_TAIL:
        unsigned += sum(hdr[345:])
    try:
        if _octal(hdr, 148, 155) == unsigned:  # six digits, NUL, space (GNU, POSIX)
            return True
    except _BadHeader:
        pass
    stored = _number(hdr[148:156])
    if stored == unsigned:
        return True
    signed = sum(b - 256 if b > 127 else b for b in hdr[:148] + hdr[156:]) + 256
    return stored == signed


def _parse_pax(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    end = len(data)
    while pos < end:
        if data[pos] == 0:
            break
        space = data.find(b" ", pos, pos + 24)
        if space == -1:
            raise _BadHeader("bad pax record")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise _BadHeader("bad pax record length") from None
        stop = pos + length
        if length <= space - pos + 1 or stop > end or data[stop - 1] != 0x0A:
            raise _BadHeader("bad pax record length")
        key, eq, value = data[space + 1 : stop - 1].partition(b"=")
        if not eq:
            raise _BadHeader("bad pax record")
        records[key.decode(ENCODING, ERRORS)] = value.decode(ENCODING, ERRORS)
        pos = stop
    return records


_FILE_TYPES = frozenset(b"0\x007")
_SPECIAL_TYPES = {ord("3"): "character device", ord("4"): "block device", ord("6"): "FIFO"}
_NO_DATA_TYPES = frozenset(b"123456")
_META_TYPES = frozenset(b"LKxg")
_POSIX_MAGIC = b"ustar\x00"
_ZERO_FIELD = bytes(100)
_ENDS = frozenset(b" \0")


class TarReader:
    """Iterate the safe members of one tar stream, once.

    While a member is current, ``read_data``, ``data`` or ``open_nested`` may consume its data;
    whatever is left is skipped when iteration moves on.
    """

    def __init__(
        self,
        source: _Source | _MemberSource,
        *,
        limits: Limits = DEFAULT_LIMITS,
        state: ReadState | None = None,
        prefix: str = "",
        label: str = "",
    ) -> None:
        self._src = source
        self.state = state if state is not None else ReadState(limits)
        self._prefix = prefix  # prepended to every name (a nested tar's place in the outer one)
        self._label = label  # how problems name this tar ("" for the outer archive)
        self.complete = False  # the end-of-archive marker was reached
        self._remaining = 0  # unread data bytes of the current member
        self._pad = 0
        self._current = ""  # the yielded member whose data is still being read

    @property
    def compressed(self) -> bool:
        return bool(getattr(self._src, "compressed", False))

    @property
    def offset(self) -> int:
        return self._src.offset

    def _fail(self, flag: str, reason: str) -> None:
        if flag == "truncated" and self._current:
            self.state.cut_members.add(self._current)
            self.state.problem(None, self._current, "cut short: the archive ends inside its data")
        self._current = ""
        self.state.problem(flag, self._label, reason, stop=True)

    def __iter__(self) -> Iterator[Member]:
        try:
            yield from self._members()
        except _StreamEnded as exc:
            self._fail("truncated", str(exc))

    def _members(self) -> Iterator[Member]:
        st = self.state
        src = self._src
        limits = st.limits
        nested = bool(self._label)
        prefix = self._prefix
        long_name: bytes | None = None
        long_link: bytes | None = None
        pax: dict[str, str] | None = None
        meta_run = 0
        first = True
        while not st.stopped:
            if self._remaining or self._pad:
                want = self._remaining + self._pad
                self._remaining = self._pad = 0
                if src.skip(want) != want:
                    self._fail("truncated", "the archive ends inside a member's data")
                    return
            self._current = ""
            hdr = src.read(BLOCK)
            if len(hdr) != BLOCK:
                if first and not nested:
                    self._fail("not_tar", "empty file" if not hdr else "too short to be a tar archive")
                else:
                    self._fail("truncated", "the archive ends without its end-of-archive marker")
                return
            if hdr == ZERO_BLOCK:
                if meta_run:
                    self._fail("truncated", "an extended header is not followed by a member")
                    return
                self.complete = True
                return
            try:
                try:
                    # The usual layout (digits, then NUL or space) parses inline: this loop runs
                    # once per member, and archives hold hundreds of thousands of them.
                    if hdr[154] or hdr[135] not in _ENDS or hdr[147] not in _ENDS or hdr[107] not in _ENDS:
                        raise ValueError
                    size = int(hdr[124:135], 8)
                    mtime = int(hdr[136:147], 8)
                    mode = int(hdr[100:107], 8) & 0o7777
                    # adler32's low half is 1 + the byte sum modulo 65521: exact for pieces
                    # under 257 bytes, and far cheaper than sum() in Python.
                    unsigned = (adler32(hdr[:148]) & 0xFFFF) + (adler32(hdr[156:345]) & 0xFFFF) + 254
                    if hdr[345:] != _ZERO_TAIL:
                        unsigned += (adler32(hdr[345:]) & 0xFFFF) - 1
                    if int(hdr[148:154], 8) != unsigned:
                        raise ValueError
                except ValueError:
                    if not _checksum_ok(hdr):
                        raise _BadHeader("header checksum mismatch") from None
                    size = _number(hdr[124:136])
                    mtime = _number(hdr[136:148])
                    mode = _number(hdr[100:108]) & 0o7777
                if size < 0:
                    raise _BadHeader("negative size")
            except _BadHeader as exc:
                if first and not nested:
                    self._fail("not_tar", f"not a tar archive ({exc})")
                else:
                    where = f"at byte {src.offset - BLOCK}"
                    self._fail("truncated", f"corrupt data {where}: {exc}")
                return
            first = False
            typeflag = hdr[156]

            if typeflag in _META_TYPES:
                meta_run += 1
                if size > limits.max_meta_size or meta_run > 16:
                    self._fail("absurd_size", "oversized or endless extended headers")
                    return
                data = src.read(size)
                pad = -size % BLOCK
                if len(data) != size or src.skip(pad) != pad:
                    self._fail("truncated", "the archive ends inside an extended header")
                    return
                if typeflag == 0x4C:  # 'L' GNU long name
                    long_name = data
                elif typeflag == 0x4B:  # 'K' GNU long link target
                    long_link = data
                elif typeflag == 0x78:  # 'x' pax header for the next member
                    try:
                        pax = _parse_pax(data)
                    except _BadHeader as exc:
                        self._fail("truncated", f"corrupt pax header: {exc}")
                        return
                # 'g' (pax global header) carries defaults for archive writers; nothing here uses it.
                continue
            meta_run = 0

            hidden_nul = False
            if long_name is not None:
                raw = long_name.rstrip(b"\0")
                hidden_nul = b"\0" in raw
                name = raw.decode(ENCODING, ERRORS)
                long_name = None
            else:
                cut = hdr.find(0, 0, 100)
                if cut == -1:
                    name = hdr[:100].decode(ENCODING, ERRORS)
                else:
                    hidden_nul = hdr.count(0, cut, 100) != 100 - cut
                    name = hdr[:cut].decode(ENCODING, ERRORS)
                if hdr[257:263] == _POSIX_MAGIC and hdr[345] != 0:
                    hidden_nul = hidden_nul or _field_has_hidden_bytes(hdr[345:500])
                    name = _field_text(hdr[345:500]) + "/" + name
            if long_link is not None:
                raw = long_link.rstrip(b"\0")
                hidden_nul = hidden_nul or b"\0" in raw
                linkname = raw.decode(ENCODING, ERRORS)
                long_link = None
            elif hdr[157] == 0 and hdr[157:257] == _ZERO_FIELD:
                linkname = ""
            else:
                hidden_nul = hidden_nul or _field_has_hidden_bytes(hdr[157:257])
                linkname = _field_text(hdr[157:257])
            if hdr[257:262] == b"ustar":
                uname, gname = _field_text(hdr[265:297]), _field_text(hdr[297:329])
            else:
                uname = gname = ""
            try:
                if pax is not None:
                    name = pax.get("path", name)
                    linkname = pax.get("linkpath", linkname)
                    uname = pax.get("uname", uname)
                    gname = pax.get("gname", gname)
                    if "size" in pax:
                        size = int(pax["size"])
                    if "mtime" in pax:
                        mtime = int(float(pax["mtime"]))
            except (ValueError, OverflowError, _BadHeader) as exc:
                self._fail("truncated", f"corrupt header for {printable(name)}: {exc}")
                return
            sparse = pax is not None and any(key.startswith("GNU.sparse.") for key in pax)
            pax = None
            if size < 0:
                self._fail("truncated", f"corrupt header for {printable(name)}: negative size")
                return

            has_data = typeflag not in _NO_DATA_TYPES
            if has_data:
                self._remaining = size
                self._pad = -size % BLOCK
            st.member_count += 1
            if st.member_count > limits.max_members:
                st.member_count -= 1
                self._fail("too_many_members", f"more than {limits.max_members} members; reading stopped")
                return
            where = f"{self._label}:{name}" if nested else name
            if has_data and size > limits.max_member_size:
                st.problem("absurd_size", where, f"size {size} is over the {limits.max_member_size} limit")
                st.stopped = True
                return
            if src.offset + size > limits.max_total_size and not nested:
                self._fail("too_large", f"more than {limits.max_total_size} bytes of tar data")
                return
            if typeflag == 0x53 and hdr[482]:  # old GNU sparse: more sparse maps follow
                while True:
                    ext = src.read(BLOCK)
                    if len(ext) != BLOCK:
                        self._fail("truncated", "the archive ends inside a sparse map")
                        return
                    if not ext[504]:
                        break

            if hidden_nul or "\0" in name or "\0" in linkname:
                st.problem("unsafe_members", where, "NUL byte in name or link target")
                continue
            try:
                norm = normalize_name(name, max_bytes=limits.max_name_bytes)
            except UnsafeName as exc:
                st.problem("unsafe_members", where, exc.reason)
                continue

            if typeflag in _FILE_TYPES:
                kind: MemberType = "dir" if name.endswith("/") else "file"
            elif typeflag == 0x35:  # '5'
                kind = "dir"
            elif typeflag == 0x32:  # '2'
                kind = "symlink"
            elif typeflag == 0x31:  # '1'
                kind = "hardlink"
            elif typeflag in _SPECIAL_TYPES:
                st.problem("special_files", where, f"{_SPECIAL_TYPES[typeflag]} refused")
                continue
            elif typeflag == 0x56:  # 'V' volume label: not a member
                st.member_count -= 1
                continue
            else:
                st.problem("unsupported_members", where, f"unsupported member type {chr(typeflag)!r}")
                continue
            if sparse:
                st.problem("unsupported_members", where, "sparse file (pax GNU.sparse) not supported")
                continue
            if not norm:
                continue  # "./": the root itself
            full = prefix + norm

            symlinks = st.symlinks
            if symlinks:
                if full in symlinks:
                    st.problem("unsafe_members", where, "replaces an earlier symbolic link")
                    continue
                folder = full[: full.rfind("/")] if "/" in full else ""
                if folder and folder not in st.clear_folders:
                    cut = full.find("/")
                    through = False
                    while cut != -1:
                        if full[:cut] in symlinks:
                            through = True
                            break
                        cut = full.find("/", cut + 1)
                    if through:
                        st.problem("unsafe_members", where, "path goes through an earlier symbolic link")
                        continue
                    st.clear_folders.add(folder)

            target = ""
            if kind == "file":
                st.files.add(full)
            elif kind == "hardlink":
                try:
                    link_norm = normalize_name(linkname, max_bytes=limits.max_name_bytes)
                except UnsafeName as exc:
                    st.problem("unsafe_members", where, f"hard link target: {exc.reason}")
                    continue
                target = prefix + link_norm
                if target == full or target not in st.files:
                    st.problem(
                        "unsafe_members", where, "hard link target is not an earlier file of the archive"
                    )
                    continue
                st.files.add(full)
            elif kind == "symlink":
                if not linkname:
                    st.problem("unsafe_members", where, "symbolic link without a target")
                    continue
                target = linkname
                st.files.discard(full)
                symlinks.add(full)
                st.clear_folders.clear()  # a folder checked before may now lie behind this link
            if kind == "file" and size:
                self._current = full
            yield Member(full, kind, size if kind == "file" else 0, mtime, mode, target, uname, gname)

    # -- the current member's data --

    def read_data(self, limit: int) -> tuple[bytes, bool]:
        """Up to ``limit`` bytes of the current member; the flag says whether that was all of it."""
        want = min(limit, self._remaining)
        try:
            data = self._src.read(want)
        except _StreamEnded as exc:
            self._fail("truncated", str(exc))
            return b"", False
        self._remaining -= len(data)
        if len(data) != want:
            self._remaining = self._pad = 0
            self._fail("truncated", "the archive ends inside a member's data")
            return data, False
        return data, self._remaining == 0

    def data(self) -> MemberData:
        """A file-like over the current member's data, valid until iteration moves on."""
        return MemberData(self)

    def open_nested(self, *, prefix: str, label: str) -> TarReader:
        """A reader for a tar stored as the current member; its names get ``prefix``."""
        return TarReader(_MemberSource(self), state=self.state, prefix=prefix, label=label)

    def finish(self) -> None:
        """After the end marker: read what trails it (so gzip's checksum is verified), within limits."""
        if not self.complete or self.state.stopped:
            return
        try:
            left = self.state.limits.max_trailing
            while left > 0:
                got = self._src.skip(min(left, OUT_CHUNK))
                if not got:
                    break
                left -= got
            else:
                self.state.problem(None, "", "data after the end of the archive was not read")
        except _StreamEnded as exc:
            self._fail("truncated", str(exc))
            return
        if getattr(self._src, "trailing_garbage", False):
            self.state.problem(None, "", "data after the compressed archive was ignored")


class _MemberSource:
    """The data of the current member of a reader, read as a stream of its own."""

    compressed = False

    def __init__(self, reader: TarReader) -> None:
        self._reader = reader
        self._src = reader._src
        self.offset = 0

    def read(self, n: int) -> bytes:
        reader = self._reader
        want = min(n, reader._remaining)
        data = self._src.read(want)
        reader._remaining -= len(data)
        self.offset += len(data)
        if len(data) != want:
            raise _StreamEnded("the archive ends inside a nested archive")
        return data

    def skip(self, n: int) -> int:
        reader = self._reader
        want = min(n, reader._remaining)
        got = self._src.skip(want)
        reader._remaining -= got
        self.offset += got
        if got != want:
            raise _StreamEnded("the archive ends inside a nested archive")
        return got


class MemberData:
    """Read-only file-like over one member's data (``read`` and ``readinto``)."""

    def __init__(self, reader: TarReader) -> None:
        self._reader = reader

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1, /) -> bytes:
        reader = self._reader
        if n is None or n < 0:
            n = reader._remaining
        data, _ = reader.read_data(n)
        if reader.state.stopped and "truncated" in reader.state.flags:
            raise ArchiveError("the archive ends inside this member's data")
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def open_tar(stream: ByteStream, *, limits: Limits = DEFAULT_LIMITS) -> TarReader:
    """A reader over a ``.tar`` or ``.tar.gz`` stream (gzip detected by magic bytes)."""
    return TarReader(open_source(stream), limits=limits)
