"""Hashing and compressing chunks, in the worker threads of a backup being written.

Each chunk is one zstd frame or raw bytes (raw when zstd would save less than MIN_SAVING,
judged for big chunks by a cheap probe first). Small files are opened, read, hashed and
compressed here in batches, so their system calls overlap with the packing.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import zstandard

from .common import CHUNK_ZSTD_LEVEL, MIN_SAVING, SMALL_ZSTD_LEVEL
from .manifest import Codec
from .scan import SourceReader

PROBE_MIN = 256 * 1024  # chunks above this get a cheap compressibility probe first
PROBE_SAMPLE = 64 * 1024
STREAM_MIN = 1024 * 1024  # chunks above this are compressed with the streaming API

Buffer: TypeAlias = bytes | bytearray | memoryview

_local = threading.local()


@dataclass(frozen=True, slots=True)
class _Compressors:
    small: zstandard.ZstdCompressor  # inputs up to STREAM_MIN
    chunk: zstandard.ZstdCompressor  # bigger inputs (streamed)
    probe: zstandard.ZstdCompressor  # the cheap compressibility test


def _compressors() -> _Compressors:
    found: _Compressors | None = getattr(_local, "compressors", None)
    if found is None:
        found = _Compressors(
            small=zstandard.ZstdCompressor(level=SMALL_ZSTD_LEVEL, write_checksum=True),
            chunk=zstandard.ZstdCompressor(level=CHUNK_ZSTD_LEVEL, write_checksum=True),
            probe=zstandard.ZstdCompressor(level=1),
        )
        _local.compressors = found
    return found


def encode_chunk(data: bytes | bytearray | memoryview, compress: bool) -> tuple[list[Buffer], Codec]:
    """zstd frame (as pieces), or the raw bytes when zstd would save less than MIN_SAVING."""
    size = len(data)
    view = memoryview(data)
    if not compress or size < 64:
        return [view], "raw"
    compressors = _compressors()
    if size > PROBE_MIN:
        middle = size // 2
        sample = bytes(view[:PROBE_SAMPLE]) + bytes(view[middle : middle + PROBE_SAMPLE])
        if len(compressors.probe.compress(sample)) > len(sample) * (1 - MIN_SAVING):
            return [view], "raw"
    if size <= STREAM_MIN:
        out = compressors.small.compress(view)
        if len(out) > size * (1 - MIN_SAVING):
            return [view], "raw"
        # compress() keeps the compressBound-sized allocation behind its result.
        return [bytes(memoryview(out))], "zstd"
    # Big inputs: the streaming API never allocates a bound-sized (8 MiB) buffer.
    stream = compressors.chunk.compressobj(size=size)
    pieces: list[Buffer] = [stream.compress(view), stream.flush()]
    if sum(len(piece) for piece in pieces) > size * (1 - MIN_SAVING):
        return [view], "raw"
    return pieces, "zstd"


@dataclass(slots=True)
class Encoded:
    pieces: list[Buffer]
    codec: Codec
    length: int
    sha256: str = ""
    mode: int = 0  # small files: what fstat said when the worker opened the file
    mtime_ns: int = 0

    @property
    def stored(self) -> int:
        return sum(len(piece) for piece in self.pieces)


_BIG = object()  # a "small" file that has grown past SMALL_FILE since the scan
SmallOutcome: TypeAlias = Encoded | OSError | object


def read_small_batch(
    reader: Callable[[], SourceReader], items: list[tuple[bytes, bool]], limit: int
) -> list[SmallOutcome]:
    """Open, read (one read of one byte more than fstat says), hash and compress small files.

    Runs in a worker thread, so the system calls of 20,000 small files overlap with the
    calling thread's packing. Per file: an Encoded (with sha256, mode and mtime), the OSError
    that stopped it, or _BIG when it has grown past `limit` (the caller reads it as a big file).
    """
    source = reader()
    out: list[SmallOutcome] = []
    for path, compress in items:
        try:
            fd, st = source.open(path)
        except OSError as exc:
            out.append(exc)
            continue
        try:
            data = os.read(fd, st.st_size + 1) if st.st_size < limit else b""
        except OSError as exc:
            out.append(exc)
            continue
        finally:
            os.close(fd)
        if len(data) > st.st_size or st.st_size >= limit:
            out.append(_BIG)
            continue
        pieces, codec = encode_chunk(data, compress) if data else ([], "raw")
        out.append(
            Encoded(
                pieces,
                codec,
                len(data),
                hashlib.sha256(data).hexdigest(),
                st.st_mode & 0o7777,
                st.st_mtime_ns,
            )
        )
    return out


def hash_and_encode(
    data: memoryview,
    compress: bool,
    digest: Any,
    after: threading.Event | None,
    hashed: threading.Event,
    last: bool,
) -> list[Encoded]:
    """One chunk of a big file: hashed in file order (after the previous chunk's update, which
    runs in another worker), then compressed in parallel with the other chunks."""
    try:
        if after is not None:
            after.wait()
        digest.update(data)
        sha256 = digest.hexdigest() if last else ""
    finally:
        hashed.set()
    pieces, codec = encode_chunk(data, compress)
    return [Encoded(pieces, codec, len(data), sha256)]
