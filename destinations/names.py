"""File names are byte strings: how the panel holds, shows and carries them.

Inside the panel (listings, restore plans, the engines) a file name or path is a str decoded
from its bytes as UTF-8 with ``surrogateescape``: every byte that is not part of valid UTF-8
becomes one lone surrogate (U+DC80..U+DCFF), and encoding back gives the exact bytes. Old homes
and mail folders hold such names (Latin-1 ``caf\\xe9.txt``).

A str with lone surrogates cannot leave the process as it is: an HTML page, a JSON document
and a database column all refuse it. So, at the edges:

* **shown**: ``display`` writes each byte that is not UTF-8 as ``\\xNN`` (``caf\\xe9.txt``);
  a name that is valid UTF-8 is shown as it is.
* **carried**: a name that is valid UTF-8 travels as text (``path``, as always). Any name can
  also travel as the base64url of its bytes (RFC 4648 section 5, padding optional:
  ``path_b64``), and a name that is not UTF-8 travels only that way. Its ``path`` then holds
  the display form, which is never read back as that name: ``?path=caf\\xe9.txt`` means the
  file whose name is those ten characters, which is why the encoding is unambiguous.

URLs cannot carry the raw bytes percent-encoded: Django decodes query strings and form
bodies as UTF-8, replacing what does not decode, so the bytes would be lost.
"""

from __future__ import annotations

import base64
import binascii
import re

ENCODING = "utf-8"
ERRORS = "surrogateescape"
_B64 = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_RAW_BYTE = re.compile("[\udc80-\udcff]")


def from_bytes(raw: bytes) -> str:
    """The panel's str for the name `raw` (exact: `to_bytes` gives `raw` back)."""
    return raw.decode(ENCODING, ERRORS)


def to_bytes(name: str) -> bytes:
    """The bytes of the panel's str `name`."""
    return name.encode(ENCODING, ERRORS)


def is_text(name: str) -> bool:
    """Whether `name` is valid text (its bytes are UTF-8): it can be shown and sent as it is."""
    if name.isascii():
        return True
    try:
        name.encode(ENCODING)
    except UnicodeEncodeError:
        return False
    return True


def display(name: str) -> str:
    """`name` fit for a page, a log line or JSON: bytes that are not UTF-8 as ``\\xNN``."""
    if is_text(name):
        return name
    try:
        return to_bytes(name).decode(ENCODING, "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no byte gives (only from a hostile client)
        return name.encode(ENCODING, "backslashreplace").decode(ENCODING)


def raw_bytes(name: str) -> list[tuple[bool, str]]:
    """`name` cut into (raw, text) runs for pages that mark its undecodable bytes: the raw
    runs hold their display form (``\\xe9``)."""
    runs: list[tuple[bool, str]] = []
    start = 0
    for match in _RAW_BYTE.finditer(name):
        if match.start() > start:
            runs.append((False, name[start : match.start()]))
        runs.append((True, f"\\x{ord(match.group()) - 0xDC00:02x}"))
        start = match.end()
    if start < len(name):
        runs.append((False, name[start:]))
    return runs


def to_b64(name: str) -> str:
    """The base64url form of `name`'s bytes (no padding); it carries any name exactly."""
    return base64.urlsafe_b64encode(to_bytes(name)).rstrip(b"=").decode("ascii")


def b64_if_needed(name: str) -> str | None:
    """The base64url form when `name` is not valid text, else None (the text carries it)."""
    return None if is_text(name) else to_b64(name)


def from_b64(value: str) -> str:
    """The name whose bytes `value` (base64url, padding optional) encodes; ValueError when it
    is not base64url."""
    stripped = value.strip().rstrip("=")
    if not _B64.fullmatch(value.strip()) or len(stripped) % 4 == 1:
        raise ValueError("not base64url (RFC 4648 section 5: A-Z a-z 0-9 - _)")
    try:
        raw = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url (RFC 4648 section 5: A-Z a-z 0-9 - _)") from None
    return from_bytes(raw)


def query(name: str, key: str = "path") -> tuple[str, str]:
    """(parameter, value) that carries `name` in a URL: `key` with the text when it is text,
    `key`_b64 with the base64url form otherwise."""
    encoded = b64_if_needed(name)
    return (key, name) if encoded is None else (f"{key}_b64", encoded)


def parse(text: object, encoded: object, key: str = "path") -> str:
    """The name a request carries as text `text` or as base64url `encoded` (one of them; None
    for one that is absent); ValueError with a message naming the field otherwise.

    Text with lone surrogates (JSON allows ``"\\udce9"``) is refused: names that are not UTF-8
    come as base64url, so that each name has exactly one text form.
    """
    if text is not None and encoded is not None:
        raise ValueError(f"give {key} or {key}_b64, not both")
    if encoded is not None:
        if not isinstance(encoded, str):
            raise ValueError(f"{key}_b64 must be a base64url string")
        try:
            return from_b64(encoded)
        except ValueError as exc:
            raise ValueError(f"{key}_b64: {exc}") from None
    if text is None:
        return ""
    if not isinstance(text, str):
        raise ValueError(f"{key} must be a string")
    if not is_text(text):
        raise ValueError(f"{key} must be valid Unicode text; send a name that is not UTF-8 as {key}_b64")
    return text
