"""Shared content of the cPanel archive builders: constants, seeded text and random bytes, password
hashes, TLS material.
"""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

BASE_TIME = 1_720_051_200  # 2024-07-04 00:00 UTC
ENCODING = "utf-8"
ERRORS = "surrogateescape"
Key = tuple[str, str]
Table = tuple[str, str, Sequence[tuple[object, ...]]]  # name, column definitions, rows

_WORD_TEXT = (
    "the of and to in is for on that with as it was by at be this from or are an not have but "
    "backup server domain account mail database restore website hosting panel file folder user "
    "password email message order product price customer invoice shipping stock review post "
    "comment page theme plugin update security cache image gallery blog news contact support "
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco"
)
WORDS = tuple(_WORD_TEXT.split())

ODD_STRINGS = [
    "O'Reilly & Sons",
    'say "hello"',
    "back\\slash \\n not a newline",
    "tab\there",
    "line one\nline two\r\nline three",
    "NUL\0inside",
    "ctrl-Z \x1a end",
    "emoji \U0001f680 and \u00e9\u00e8\u00ea",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "Robert'); DROP TABLE Students;--",
    "100% _wild_ cards",
    "/* not a comment */ -- nor this; semi;colons;",
    "",
    " leading and trailing spaces ",
]


# -- content helpers ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _corpus(seed: int) -> bytes:
    rng = random.Random(seed * 7919 + 1)
    words: list[str] = []
    size = 0
    while size < 1 << 20:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16)))
        line = line.capitalize() + ".\n"
        words.append(line)
        size += len(line)
    return "".join(words).encode()


def text_blob(rng: random.Random, seed: int, size: int) -> bytes:
    corpus = _corpus(seed)
    out = bytearray()
    while len(out) < size:
        start = rng.randrange(0, len(corpus) - 1)
        out += corpus[start : start + (size - len(out))]
    return bytes(out)


def random_blob(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


def _hash(rng: random.Random, kind: str = "sha512") -> str:
    salt = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEF0123456789./") for _ in range(16))
    body = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEF0123456789./") for _ in range(86))
    return f"$6${salt}${body}" if kind == "sha512" else body


def _mysql_hash(rng: random.Random) -> str:
    return "*" + hashlib.sha1(rng.randbytes(20)).hexdigest().upper() + "0" * 0


@functools.lru_cache(maxsize=32)
def tls_material(seed: int, domain: str) -> tuple[str, str, str]:
    """(private key, certificate, CA certificate) PEM for a domain; cached: RSA keys are slow."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    def make(cn: str, issuer_key: Any = None, issuer: str | None = None) -> tuple[Any, str]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        issuer_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer or cn)])
        start = datetime(2024, 1, 1, tzinfo=UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(int.from_bytes(hashlib.sha256(f"{seed}:{cn}".encode()).digest()[:8], "big"))
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .sign(issuer_key or key, hashes.SHA256())
        )
        return key, cert.public_bytes(serialization.Encoding.PEM).decode()

    ca_key, ca_pem = make(f"Test CA {seed}")
    key, cert_pem = make(domain, ca_key, f"Test CA {seed}")
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return key_pem, cert_pem, ca_pem
