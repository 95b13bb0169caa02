"""Encryption of FTP passwords at rest.

The key comes from BACKUPSITE_ENCRYPTION_KEY (one Fernet key, or several separated by
commas: the first encrypts, all decrypt, which allows rotation). Without it, the embedded
default generates a key into the data folder on first use.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from backupsite.errors import Error
from backupsite.keys import read_or_create


class DecryptionFailed(Error):
    """The stored secret cannot be read with the configured key (the key changed?)."""


@cache
def _fernet() -> MultiFernet:
    raw = settings.ENCRYPTION_KEY or read_or_create(
        settings.ENCRYPTION_KEY_FILE, lambda: Fernet.generate_key().decode()
    )
    try:
        keys = [Fernet(part.strip().encode()) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise ImproperlyConfigured(
            "BACKUPSITE_ENCRYPTION_KEY must be a Fernet key (32 url-safe base64-encoded bytes)"
        ) from None
    if not keys:
        raise ImproperlyConfigured("BACKUPSITE_ENCRYPTION_KEY is empty")
    return MultiFernet(keys)


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionFailed(
            "the stored FTP password cannot be decrypted with the configured encryption key"
        ) from None
