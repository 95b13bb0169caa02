"""Byte sources for the safe tar reader: the caller's stream, plain or gzip, read sequentially.

Nothing is seeked; decompression happens in blocks of at most OUT_CHUNK, so a "zip bomb"
costs time, never memory.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Protocol

IN_CHUNK = 256 * 1024  # compressed bytes asked from the caller's stream per read
OUT_CHUNK = 1024 * 1024  # most decompressed bytes produced per zlib call
GZIP_MAGIC = b"\x1f\x8b"


class ByteStream(Protocol):
    def read(self, n: int, /) -> bytes: ...


class StreamEnded(Exception):
    """The compressed stream is corrupt or ends before its end marker."""


class Source:
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


class _PlainSource(Source):
    def __init__(self, stream: ByteStream, first: bytes) -> None:
        super().__init__()
        self._stream = stream
        self._pending = first

    def _chunk(self) -> bytes:
        if self._pending:
            chunk, self._pending = self._pending, b""
            return chunk
        return bytes(self._stream.read(IN_CHUNK))


class _GzipSource(Source):
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
            raise StreamEnded(self._error)
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
                raise StreamEnded(self._error) from None
            if d.eof:
                self._raw = d.unused_data
                self._member_done = True
            if out:
                return out
            if self._input_eof and not d.unconsumed_tail and not d.eof:
                raise StreamEnded("the gzip data ends before its end marker")
        return b""


def open_source(stream: ByteStream) -> Source:
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
