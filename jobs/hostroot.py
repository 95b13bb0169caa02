"""The server the panel runs on, seen under BACKUPSITE_HOST_ROOT (default `/`).

Accounts keep their home as the server names it (`/home/bob`); whatever opens a home (backups,
restores) maps it here first, so a test or a container can point the panel at a whole server
tree mounted elsewhere.
"""

from __future__ import annotations

import os

from django.conf import settings


def root() -> str:
    return os.path.normpath(settings.HOST_ROOT)


def host_path(path: str) -> str:
    """`path` as the server names it (absolute), as this process must open it."""
    base = root()
    if base == "/":
        return path
    return os.path.join(base, path.lstrip("/"))
