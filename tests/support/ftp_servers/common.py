"""What the FTP server launchers share: `PeerUnavailable`, self-signed certificates, free ports and
waiting for a server to listen.

Nothing here imports pytest: benchmark scripts use these helpers too.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import random
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class PeerUnavailable(RuntimeError):
    """A server binary, a library or a privilege that a launcher needs is missing."""


# --- certificates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SelfSignedCert:
    pem: Path  # private key + certificate, as pure-ftpd's -2 and pyftpdlib's certfile want it
    fingerprint: str  # "sha256:AA:BB:..."


def fingerprint_of(der: bytes) -> str:
    digest = hashlib.sha256(der).hexdigest().upper()
    return "sha256:" + ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def make_self_signed_cert(folder: Path, common_name: str = "127.0.0.1") -> SelfSignedCert:
    """An EC P-256 certificate for 127.0.0.1/localhost (EC keys are generated in ~1 ms)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = folder / "cert+key.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    pem.chmod(0o600)
    return SelfSignedCert(pem, fingerprint_of(cert.public_bytes(serialization.Encoding.DER)))


# --- ports -------------------------------------------------------------------------------------


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(size: int, low: int = 20000, high: int = 60000) -> tuple[int, int]:
    """A random block of `size` consecutive free ports (checked now; good enough for tests)."""
    for _ in range(200):
        first = random.randrange(low, high - size)
        if all(_port_is_free(port) for port in range(first, first + size)):
            return first, first + size - 1
    raise PeerUnavailable(f"no block of {size} free ports found between {low} and {high}")


def wait_listening(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise PeerUnavailable(f"the server exited with code {proc.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise PeerUnavailable(f"nothing is listening on {host}:{port} after {timeout} s")
