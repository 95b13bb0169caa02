"""Deterministic generator of cPanel account archives and destination trees, for tests and benchmarks.

What it writes follows the team's notes on cPanel's backup format. Every archive comes with
a manifest of what was written (home listing, part sizes, texts, secrets) computed here while
writing, so tests can compare the indexer against it without calling the code under test.

    python -m tests.support.cpanel_archives OUT_DIR --accounts 3 --layout all --seed 0 --size-scale 1

The modules, by role:

* `archive`: `make_account_archive`, one account archive (file name by style, gzip, homedir.tar).
* `account`: what the archive holds (settings, DNS, mail, SSL, the home folder).
* `databases`: the account's databases as mysqldump writes them.
* `manifest`: `GeneratedArchive`, what was written, and the writer that records it.
* `content`: constants and seeded content shared by the others.
* `hostile`: `make_hostile_archive`, one unsafe archive per case of `HOSTILE_KINDS`.
* `trees`: `make_destination_tree`, a destination laid out as cPanel and users leave it.

This __init__ exports the builders' public API on purpose, so that importers write
`from tests.support.cpanel_archives import make_account_archive`.
"""

from tests.support.cpanel_archives.archive import make_account_archive
from tests.support.cpanel_archives.hostile import HOSTILE_KINDS, HostileArchive, make_hostile_archive
from tests.support.cpanel_archives.manifest import GeneratedArchive
from tests.support.cpanel_archives.trees import LAYOUTS, TreeEntry, make_destination_tree

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
