"""Paths and names on the server.

Every path given to the seam is relative to the destination's directory and is refused
(PathRefused) if it would leave it. Names that a server sends in listings are untrusted.
"""

from __future__ import annotations

from .errors import PathRefused

_CONTROL_CHARS = ("\0", "\r", "\n")


def clean_path(path: str) -> str:
    """`path` normalised relative to the destination directory ("" is the directory itself).

    Refuses (PathRefused) absolute paths, '..' components, NUL, CR and LF.
    """
    if any(char in path for char in _CONTROL_CHARS):
        raise PathRefused(f"refusing a path with a control character: {path!r}")
    if path.startswith("/"):
        raise PathRefused(
            f"refusing an absolute path: {path!r}", hint="Paths are relative to the destination directory."
        )
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PathRefused(f"refusing a path that climbs out with '..': {path!r}")
    return "/".join(parts)


def _clean_directory(directory: str) -> str:
    # The destination directory is relative to the FTP home even when written "/backups".
    return clean_path(directory.lstrip("/"))


def unsafe_name_reason(name: str) -> str | None:
    """Why a name from a listing must not be used (None when it is safe)."""
    if name in ("", ".", ".."):
        return "a special name"
    if "/" in name:
        return "a slash"
    if any(char in name for char in _CONTROL_CHARS):
        return "a control character"
    if any("\udc80" <= char <= "\udcff" for char in name):
        return "bytes that are not UTF-8"
    return None


def _join(root: str, relative: str) -> str:
    if not relative:
        return root
    return root.rstrip("/") + "/" + relative
