"""Parsing the fields of a tar header block: numbers (octal and GNU base-256), text fields,
the checksum, pax records, and the type flags.
"""

from __future__ import annotations

from .common import ENCODING, ERRORS

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)


class BadHeader(Exception):
    pass


def header_number(data: bytes) -> int:
    if data and data[0] & 0x80:  # GNU base-256
        value = int.from_bytes(data[1:], "big")
        if data[0] == 0xFF:
            value -= 1 << (8 * (len(data) - 1))
        elif data[0] != 0x80:
            raise BadHeader("bad base-256 number")
        return value
    text = data.split(b"\0", 1)[0].strip()
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise BadHeader("bad octal number") from None


def field_has_hidden_bytes(data: bytes) -> bool:
    """True when bytes follow the NUL that ends a fixed-size field (a name with a NUL inside)."""
    cut = data.find(b"\0")
    return cut != -1 and data.count(0, cut) != len(data) - cut


def field_text(data: bytes) -> str:
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
    return header_number(hdr[start:end])


ZERO_TAIL = bytes(BLOCK - 345)


def checksum_ok(hdr: bytes) -> bool:
    # GNU headers leave the last 167 bytes empty: comparing is cheaper than adding them up.
    unsigned = sum(hdr[:148]) + sum(hdr[156:345]) + 256
    if hdr[345:] != ZERO_TAIL:
        unsigned += sum(hdr[345:])
    try:
        if _octal(hdr, 148, 155) == unsigned:  # six digits, NUL, space (GNU, POSIX)
            return True
    except BadHeader:
        pass
    stored = header_number(hdr[148:156])
    if stored == unsigned:
        return True
    signed = sum(b - 256 if b > 127 else b for b in hdr[:148] + hdr[156:]) + 256
    return stored == signed


def parse_pax(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    end = len(data)
    while pos < end:
        if data[pos] == 0:
            break
        space = data.find(b" ", pos, pos + 24)
        if space == -1:
            raise BadHeader("bad pax record")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise BadHeader("bad pax record length") from None
        stop = pos + length
        if length <= space - pos + 1 or stop > end or data[stop - 1] != 0x0A:
            raise BadHeader("bad pax record length")
        key, eq, value = data[space + 1 : stop - 1].partition(b"=")
        if not eq:
            raise BadHeader("bad pax record")
        records[key.decode(ENCODING, ERRORS)] = value.decode(ENCODING, ERRORS)
        pos = stop
    return records


FILE_TYPES = frozenset(b"0\x007")
SPECIAL_TYPES = {ord("3"): "character device", ord("4"): "block device", ord("6"): "FIFO"}
NO_DATA_TYPES = frozenset(b"123456")
META_TYPES = frozenset(b"LKxg")
POSIX_MAGIC = b"ustar\x00"
ZERO_FIELD = bytes(100)
ENDS = frozenset(b" \0")
