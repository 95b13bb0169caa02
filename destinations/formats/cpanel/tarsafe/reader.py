"""The safe tar reader: iterating the members of one tar stream, and reading their data.

See the package docstring for what it refuses and why.
"""

from __future__ import annotations

from collections.abc import Iterator
from zlib import adler32

from .common import (
    DEFAULT_LIMITS,
    ENCODING,
    ERRORS,
    ArchiveError,
    Limits,
    Member,
    MemberType,
    ReadState,
    UnsafeName,
    normalize_name,
    printable,
)
from .header import (
    BLOCK,
    ENDS,
    FILE_TYPES,
    META_TYPES,
    NO_DATA_TYPES,
    POSIX_MAGIC,
    SPECIAL_TYPES,
    ZERO_BLOCK,
    ZERO_FIELD,
    ZERO_TAIL,
    BadHeader,
    checksum_ok,
    field_has_hidden_bytes,
    field_text,
    header_number,
    parse_pax,
)
from .stream import OUT_CHUNK, ByteStream, Source, StreamEnded, open_source


class TarReader:
    """Iterate the safe members of one tar stream, once.

    While a member is current, ``read_data``, ``data`` or ``open_nested`` may consume its data;
    whatever is left is skipped when iteration moves on.
    """

    def __init__(
        self,
        source: Source | _MemberSource,
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
        except StreamEnded as exc:
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
                    if hdr[154] or hdr[135] not in ENDS or hdr[147] not in ENDS or hdr[107] not in ENDS:
                        raise ValueError
                    size = int(hdr[124:135], 8)
                    mtime = int(hdr[136:147], 8)
                    mode = int(hdr[100:107], 8) & 0o7777
                    # adler32's low half is 1 + the byte sum modulo 65521: exact for pieces
                    # under 257 bytes, and far cheaper than sum() in Python.
                    unsigned = (adler32(hdr[:148]) & 0xFFFF) + (adler32(hdr[156:345]) & 0xFFFF) + 254
                    if hdr[345:] != ZERO_TAIL:
                        unsigned += (adler32(hdr[345:]) & 0xFFFF) - 1
                    if int(hdr[148:154], 8) != unsigned:
                        raise ValueError
                except ValueError:
                    if not checksum_ok(hdr):
                        raise BadHeader("header checksum mismatch") from None
                    size = header_number(hdr[124:136])
                    mtime = header_number(hdr[136:148])
                    mode = header_number(hdr[100:108]) & 0o7777
                if size < 0:
                    raise BadHeader("negative size")
            except BadHeader as exc:
                if first and not nested:
                    self._fail("not_tar", f"not a tar archive ({exc})")
                else:
                    where = f"at byte {src.offset - BLOCK}"
                    self._fail("truncated", f"corrupt data {where}: {exc}")
                return
            first = False
            typeflag = hdr[156]

            if typeflag in META_TYPES:
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
                        pax = parse_pax(data)
                    except BadHeader as exc:
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
                if hdr[257:263] == POSIX_MAGIC and hdr[345] != 0:
                    hidden_nul = hidden_nul or field_has_hidden_bytes(hdr[345:500])
                    name = field_text(hdr[345:500]) + "/" + name
            if long_link is not None:
                raw = long_link.rstrip(b"\0")
                hidden_nul = hidden_nul or b"\0" in raw
                linkname = raw.decode(ENCODING, ERRORS)
                long_link = None
            elif hdr[157] == 0 and hdr[157:257] == ZERO_FIELD:
                linkname = ""
            else:
                hidden_nul = hidden_nul or field_has_hidden_bytes(hdr[157:257])
                linkname = field_text(hdr[157:257])
            if hdr[257:262] == b"ustar":
                uname, gname = field_text(hdr[265:297]), field_text(hdr[297:329])
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
            except (ValueError, OverflowError, BadHeader) as exc:
                self._fail("truncated", f"corrupt header for {printable(name)}: {exc}")
                return
            sparse = pax is not None and any(key.startswith("GNU.sparse.") for key in pax)
            pax = None
            if size < 0:
                self._fail("truncated", f"corrupt header for {printable(name)}: negative size")
                return

            has_data = typeflag not in NO_DATA_TYPES
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

            if typeflag in FILE_TYPES:
                kind: MemberType = "dir" if name.endswith("/") else "file"
            elif typeflag == 0x35:  # '5'
                kind = "dir"
            elif typeflag == 0x32:  # '2'
                kind = "symlink"
            elif typeflag == 0x31:  # '1'
                kind = "hardlink"
            elif typeflag in SPECIAL_TYPES:
                st.problem("special_files", where, f"{SPECIAL_TYPES[typeflag]} refused")
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
        except StreamEnded as exc:
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
        except StreamEnded as exc:
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
            raise StreamEnded("the archive ends inside a nested archive")
        return data

    def skip(self, n: int) -> int:
        reader = self._reader
        want = min(n, reader._remaining)
        got = self._src.skip(want)
        reader._remaining -= got
        self.offset += got
        if got != want:
            raise StreamEnded("the archive ends inside a nested archive")
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
