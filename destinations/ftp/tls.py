"""TLS for the FTP seam: the contexts of control connections, and certificate fingerprints."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import ssl


def fingerprint_of(der: bytes) -> str:
    """The "sha256:AA:BB:..." form of a DER certificate, the form the destination form shows and pins."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return "sha256:" + ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def normalise_fingerprint(value: str) -> str:
    """Accept "sha256:aa:bb..", "AA:BB..", "aabb.." and spaces; return the canonical form."""
    text = value.strip()
    if text.lower().startswith("sha256:"):
        text = text[7:]
    hexdigits = re.sub(r"[\s:]", "", text).upper()
    if not re.fullmatch(r"[0-9A-F]{64}", hexdigits):
        raise ValueError(f"not a SHA-256 certificate fingerprint: {value!r}")
    return "sha256:" + ":".join(hexdigits[i : i + 2] for i in range(0, 64, 2))


@functools.cache
def _tls_context(pinned: bool) -> ssl.SSLContext:
    if pinned:
        # The pin is checked by hand after the handshake: exactly that certificate, any issuer.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context()


def _peer_fingerprint(writer: asyncio.StreamWriter) -> str | None:
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return fingerprint_of(der) if der else None
