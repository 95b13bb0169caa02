"""Deterministic cPanel account archives and destination trees, for tests and benchmarks.

This package's __init__ exports the builders' public API on purpose, so that importers write
`from tests.support.cpanel_archives import make_account_archive`.
"""

from tests.support.cpanel_archives.account import (
    HOSTILE_KINDS,
    LAYOUTS,
    GeneratedArchive,
    HostileArchive,
    TreeEntry,
    make_account_archive,
    make_destination_tree,
    make_hostile_archive,
)

__all__ = [
    "HOSTILE_KINDS",
    "LAYOUTS",
    "GeneratedArchive",
    "HostileArchive",
    "TreeEntry",
    "make_account_archive",
    "make_destination_tree",
    "make_hostile_archive",
]
