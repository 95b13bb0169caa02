"""cPanel account backups on a destination: finding them, indexing them, reading parts back.

This package's __init__ is the format's public API: callers import from here. Modules: layout
(``discover``), parts (``classify``, ``part_selector``), index (``read_archive``), contents (what
metadata files say), members (``iter_members``), tarsafe (the safe streaming tar reader).

Plain Python (no Django): the Django layer lists the destination, feeds downloads in, and
stores what comes out. The format is the one cPanel's pkgacct writes (its backups and cpmove files).

* ``discover(entries)`` finds account archives in a recursive listing.
* ``read_archive(stream)`` reads one archive once, streaming, and returns an ``ArchiveIndex``:
  the account (from ``cp/<user>``, never from the file or folder name), its restorable parts,
  the home folder listing, and what was wrong with the archive.
* ``classify(relpath)`` says which parts a member belongs to; the indexer and the restore use
  it alike, and ``part_selector`` turns chosen parts into a member filter for ``iter_members``.
* ``iter_members(stream, select, top=...)`` yields the chosen safe members with their data.

Decisions:

* Split archives (``X.tar.gz.part00001`` ...) are supported: ``discover`` returns one candidate
  with ``split=True`` and ``parts`` in order; read them by chaining the downloads of ``parts``
  into one stream (``IterStream(chain(...))``). Missing or odd-sized parts mark it incomplete.
* Corrupt or truncated archives never raise from ``read_archive``: the index comes back with
  ``truncated`` (or ``not_tar``) in ``flags``, a message in ``problems``, and what could be read
  before the damage. ``ArchiveIndex.complete`` is False whenever reading stopped early.
  ``iter_members`` raises ``ArchiveError`` at the point where the damage is met, because a
  restore must not report success on a partial read. Errors from the caller's stream itself
  (network, FTP) propagate unchanged in both.
* Dates: folder and file-name dates are the cPanel server's local date; they are returned as
  aware datetimes at UTC. FTP mtimes without a zone are taken as UTC.
"""

from .contents import parse_cp_file
from .index import ArchiveIndex, HomeEntry, read_archive
from .layout import Candidate, Layout, discover
from .members import iter_members
from .parts import PART_KINDS, Part, PartKind, classify, part_selector
from .tarsafe import DEFAULT_LIMITS, ArchiveError, IterStream, Limits, Member, MemberData, Problem

__all__ = [
    "DEFAULT_LIMITS",
    "PART_KINDS",
    "ArchiveError",
    "ArchiveIndex",
    "Candidate",
    "HomeEntry",
    "IterStream",
    "Layout",
    "Limits",
    "Member",
    "MemberData",
    "Part",
    "PartKind",
    "Problem",
    "classify",
    "discover",
    "iter_members",
    "parse_cp_file",
    "part_selector",
    "read_archive",
]
