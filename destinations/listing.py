"""File listings of backups, stored as a tree of content-addressed folder blobs.

Each folder of a backup becomes one `ListingBlob`: its entries (name, type, size, mtime, mode,
link target, and for sub-folders the digest of their blob; for native backups also where the
bytes lie), JSON encoded and zstd compressed, keyed by the SHA-256 of the JSON. A snapshot
stores only the digest of its root folder.

Why: browsing a folder costs one blob read per level of depth (no scan over a million rows);
folders that did not change between backups have the same digest and are stored once, so N
backups of the same home cost about one copy of the tree plus what changed, instead of N
copies of every file row.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import hashlib
import json
import operator
import posixpath
import re
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, overload

import zstandard
from django.utils import timezone

from . import names
from .gcpause import no_gc
from .models import ListingBlob

_compressor = zstandard.ZstdCompressor(level=3)
_decompressor = zstandard.ZstdDecompressor()
_BATCH = 500

EMPTY_TREE = ""


@dataclass(frozen=True)
class Entry:
    """One entry of a listing. `path` is relative to the root, '/'-separated, never empty."""

    path: str
    type: str  # "file", "dir", "symlink", "hardlink"
    size: int = 0
    mtime: int = 0  # epoch seconds
    mode: int = 0
    target: str = ""
    extra: Any = None  # engine data (e.g. where a native file's bytes lie)

    @functools.cached_property
    def name(self) -> str:
        # Views sort big folders by name: computed once per entry (and filled in up front by
        # _rows_to_entries). Same as posixpath.basename, which costs three times as much.
        return self.path.rpartition("/")[2]


Row = list[Any] | tuple[Any, ...]  # [name, type, size, mtime, mode, target, digest, extra]


def _encode(rows: list[Row]) -> bytes:
    return json.dumps(rows, separators=(",", ":"), ensure_ascii=True).encode()


_SIZED = frozenset(("file", "dir", "hardlink"))  # types whose size counts in a folder's total


def _split(path: str) -> tuple[str, str]:
    """posixpath.split for a path without leading or trailing slashes, at a third of the cost."""
    cut = path.rfind("/")
    if cut < 0:
        return "", path
    return path[:cut].rstrip("/"), path[cut + 1 :]


_TYPES = ("file", "dir", "symlink", "hardlink")
_TYPE_CODES = {name: code for code, name in enumerate(_TYPES)}
_DIR = _TYPE_CODES["dir"]
_ODD = 255  # a row kept whole in _Folder.odd
_INT64 = range(-(2**63), 2**63)


class _Folder:
    """The rows of one folder while a listing is built, column by column.

    About 100 bytes a row instead of ~300 as a tuple of Python objects: a million entries
    would otherwise hold ~300 MB until the last one is read. Rows that do not fit the columns
    (another type, a link target, engine data, values beyond 64 bits) are kept whole in `odd`.
    """

    __slots__ = ("mode", "mtime", "names", "odd", "size", "types")

    def __init__(self) -> None:
        self.names: list[str] = []
        self.types = bytearray()
        self.size = array("q")
        self.mtime = array("q")
        self.mode = array("q")
        self.odd: dict[int, tuple[Any, ...]] = {}

    def add(self, name: str, type_: str, size: Any, mtime: Any, mode: Any, target: Any, extra: Any) -> None:
        code = _TYPE_CODES.get(type_, _ODD)
        if (
            code == _ODD
            or target != ""
            or extra is not None
            or type(size) is not int  # bool is an int the JSON would spell differently
            or type(mtime) is not int
            or type(mode) is not int
            or size not in _INT64
            or mtime not in _INT64
            or mode not in _INT64
        ):
            self.odd[len(self.names)] = (name, type_, size, mtime, mode, target, None, extra)
            code, size, mtime, mode = _ODD, 0, 0, 0
        self.names.append(name)
        self.types.append(code)
        self.size.append(size)
        self.mtime.append(mtime)
        self.mode.append(mode)

    def rows(self) -> Iterator[Row]:
        """The rows in arrival order; folder rows as lists (their digest and size come later)."""
        odd = self.odd
        for index, (name, code, size, mtime, mode) in enumerate(
            zip(self.names, self.types, self.size, self.mtime, self.mode, strict=True)
        ):
            if code == _ODD:
                row = odd[index]
                yield list(row) if row[1] == "dir" else row
            elif code == _DIR:
                yield [name, "dir", size, mtime, mode, "", None, None]
            else:
                yield (name, _TYPES[code], size, mtime, mode, "", None, None)


def build(entries: Iterable[Entry]) -> str:
    """Store the listing of `entries` and return the digest of its root folder.

    Folders implied by deeper entries are created. Later duplicates of a path replace
    earlier ones (a tar may hold a member twice; the last one wins, as on extraction).
    """
    # Rows per folder in arrival order; the names of folders that are only implied by deeper
    # entries are kept apart, because any entry of the same name wins over them.
    given: dict[str, _Folder] = {"": _Folder()}
    implied: dict[str, list[str]] = {}
    with no_gc():
        for entry in entries:
            path = entry.path.strip("/")
            if not path:
                continue
            cut = path.rfind("/")  # _split, inlined: this loop runs once per entry
            if cut < 0:
                parent, name = "", path
            else:
                parent, name = path[:cut].rstrip("/"), path[cut + 1 :]
            folder = given.get(parent)
            if folder is None:
                folder = _open_folder(given, implied, parent)
            folder.add(name, entry.type, entry.size, entry.mtime, entry.mode, entry.target, entry.extra)
            if entry.type == "dir" and path not in given:
                given[path] = _Folder()
        return _store_folders(given, implied)


def _open_folder(given: dict[str, _Folder], implied: dict[str, list[str]], path: str) -> _Folder:
    """Create the folder `path` and any missing ancestors, each with a row in its parent."""
    folder = given[path] = _Folder()
    while True:
        parent, name = _split(path)
        implied.setdefault(parent, []).append(name)
        if parent in given:
            return folder
        given[parent] = _Folder()
        path = parent


def _store_folders(given: dict[str, _Folder], implied: dict[str, list[str]]) -> str:
    pending: dict[str, bytes] = {}
    digests: dict[str, str] = {}
    sizes: dict[str, int] = {}
    # Deepest folders first, so every child's digest is known when its parent is encoded.
    for folder_path in sorted(given, key=lambda p: p.count("/") + (1 if p else 0), reverse=True):
        chosen: dict[str, Row] = {
            name: [name, "dir", 0, 0, 0o755, "", None, None] for name in implied.pop(folder_path, ())
        }
        for row in given.pop(folder_path).rows():
            chosen[row[0]] = row
        total = 0
        for name, row in chosen.items():
            if row[1] == "dir":
                child = digests.pop(f"{folder_path}/{name}" if folder_path else name)
                row[6] = child  # type: ignore[index]
                row[2] = sizes[child]  # type: ignore[index]
            if row[1] in _SIZED:
                total += row[2]
        raw = _encode([chosen[name] for name in sorted(chosen)])
        digest = hashlib.sha256(raw).hexdigest()
        sizes[digest] = total
        digests[folder_path] = digest
        pending[digest] = raw
        if len(pending) >= _BATCH:
            _flush(pending)
    _flush(pending)
    return digests[""]


class CannotUpdate(Exception):
    """`update` cannot derive the new listing from the old one: build it from all entries."""


def update(root: str, changes: dict[str, Entry | None]) -> str:
    """The listing `root` becomes when the entry at each path of `changes` is replaced or added
    (an Entry) or removed (None); returns its root digest, as `build` of the whole new entry
    list would.

    Only the folders on the way to a change are loaded, patched and stored again; every other
    folder keeps its blob. For listings of well-formed trees only, which the caller checks:
    before and after the change, paths are unique and plain (no empty part, no leading or
    trailing '/'), and every entry's folder is an entry of type "dir" (or the root), so that
    no folder is only implied. Raises CannotUpdate (or KeyError for a missing blob) when the
    old listing does not fit the changes.
    """
    if not root:
        raise CannotUpdate("no listing to start from")
    changed_in: dict[str, list[tuple[str, Entry | None]]] = {}
    todo = {""}  # folders whose blob changes: those holding a change, and their ancestors
    for path, entry in changes.items():
        folder, _sep, name = path.rpartition("/")
        changed_in.setdefault(folder, []).append((name, entry))
        if entry is not None and entry.type == "dir":
            todo.add(path)  # a folder that may be new (its blob is made even if empty)
        while folder not in todo:
            todo.add(folder)
            folder = folder.rpartition("/")[0]
    # Old blobs, top down, one query per depth: a folder's old digest is in its parent's row.
    depth_of = {folder: folder.count("/") + 1 if folder else 0 for folder in todo}
    levels: dict[int, list[str]] = {}
    for folder, depth in depth_of.items():
        levels.setdefault(depth, []).append(folder)
    old_digest = {"": root}
    old_rows: dict[str, list[list[Any]]] = {}
    for depth in sorted(levels):
        wanted = {old_digest[folder] for folder in levels[depth] if folder in old_digest}
        blobs = _load_many(wanted)
        for folder in levels[depth]:
            digest = old_digest.get(folder)
            if digest is None:
                continue  # a folder the old listing does not have
            rows = old_rows[folder] = blobs[digest]
            prefix = f"{folder}/" if folder else ""
            for row in rows:
                if row[1] == "dir" and prefix + row[0] in todo:
                    old_digest[prefix + row[0]] = row[6]
    # New blobs, deepest first.
    pending: dict[str, bytes] = {}
    new_digest: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for folder in sorted(todo, key=depth_of.__getitem__, reverse=True):
        chosen = {row[0]: row for row in old_rows.get(folder, ())}
        for name, entry in changed_in.get(folder, ()):
            if entry is None:
                chosen.pop(name, None)
            else:
                e = entry
                chosen[name] = [name, e.type, e.size, e.mtime, e.mode, e.target, None, e.extra]
        prefix = f"{folder}/" if folder else ""
        total = 0
        for name, row in chosen.items():
            if row[1] == "dir":
                child = new_digest.get(prefix + name)
                if child is not None:
                    row[6], row[2] = child, sizes[child]  # rows here are lists: loaded or made above
                elif row[6] is None:
                    raise CannotUpdate(f"folder {prefix + name!r} has no blob")
            if row[1] in _SIZED:
                total += row[2]
        if folder in changes and changes[folder] is None and chosen:
            raise CannotUpdate(f"removed folder {folder!r} still holds entries")
        raw = _encode([chosen[name] for name in sorted(chosen)])
        digest = hashlib.sha256(raw).hexdigest()
        sizes[digest] = total
        new_digest[folder] = digest
        pending[digest] = raw
    items = list(pending.items())
    for start in range(0, len(items), _BATCH):
        _flush(dict(items[start : start + _BATCH]))
    return new_digest[""]


def _load_many(digests: set[str]) -> dict[str, list[list[Any]]]:
    """The rows of several blobs; KeyError when one is missing."""
    found = _fetch_many(digests)
    missing = digests - found.keys()
    if missing:
        raise KeyError(f"listing blob {min(missing)} is missing")
    return found


def _fetch_many(digests: Iterable[str]) -> dict[str, list[list[Any]]]:
    """The rows of those of several blobs that exist, one query per `_BATCH` digests."""
    found: dict[str, list[list[Any]]] = {}
    wanted = sorted(digests)
    with no_gc():
        for start in range(0, len(wanted), _BATCH):
            batch = wanted[start : start + _BATCH]
            for digest, data in ListingBlob.objects.filter(digest__in=batch).values_list("digest", "data"):
                found[digest] = json.loads(_decompressor.decompress(bytes(data)))
    return found


def _flush(pending: dict[str, bytes]) -> None:
    if not pending:
        return
    existing = set(ListingBlob.objects.filter(digest__in=list(pending)).values_list("digest", flat=True))
    if existing:
        ListingBlob.objects.filter(digest__in=list(existing)).update(touched=timezone.now())
    ListingBlob.objects.bulk_create(
        [
            ListingBlob(digest=digest, data=_compressor.compress(raw), entries=raw.count(b"],[") + 1)
            for digest, raw in pending.items()
            if digest not in existing
        ],
        ignore_conflicts=True,
        batch_size=_BATCH,
    )
    pending.clear()


def load(digest: str) -> list[list[Any]]:
    if not digest:
        return []
    blob = ListingBlob.objects.filter(digest=digest).values_list("data", flat=True).first()
    if blob is None:
        raise KeyError(f"listing blob {digest} is missing")
    with no_gc():
        rows: list[list[Any]] = json.loads(_decompressor.decompress(bytes(blob)))
    return rows


def _row_to_entry(folder: str, row: list[Any]) -> Entry:
    path = posixpath.join(folder, row[0]) if folder else row[0]
    return Entry(path=path, type=row[1], size=row[2], mtime=row[3], mode=row[4], target=row[5], extra=row[7])


# Entry is a frozen dataclass: its __init__ sets each field through object.__setattr__, which
# makes up most of the cost of listing a big folder. Filling __dict__ makes the same objects.
_ENTRY_FIELDS = ("path", "type", "size", "mtime", "mode", "target", "extra")
_FAST_ENTRIES = (
    tuple(field.name for field in dataclasses.fields(Entry)) == _ENTRY_FIELDS
    and not hasattr(Entry, "__post_init__")
    and not hasattr(Entry, "__slots__")
)


def _rows_to_entries(folder: str, rows: list[list[Any]]) -> list[Entry]:
    if not _FAST_ENTRIES:
        return [_row_to_entry(folder, row) for row in rows]
    prefix = f"{folder}/" if folder else ""
    new = object.__new__
    entries = []
    with no_gc():
        for row in rows:
            entry = new(Entry)
            entry.__dict__.update(
                path=prefix + row[0],
                type=row[1],
                size=row[2],
                mtime=row[3],
                mode=row[4],
                target=row[5],
                extra=row[7],
                name=row[0],
            )
            entries.append(entry)
    return entries


def normalise(path: str) -> str:
    """A listing path as clients send it: relative, '/'-separated; refuses '..'."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts or "\x00" in path:
        raise ValueError("path must not contain '..' or NUL")
    return "/".join(parts)


def folder_digest(root: str, path: str) -> str | None:
    """Digest of the folder at `path`, or None when there is no such folder."""
    digest = root
    for part in [p for p in path.split("/") if p]:
        row = next((r for r in load(digest) if r[0] == part), None)
        if row is None or row[1] != "dir":
            return None
        digest = row[6]
    return digest


def list_folder(root: str, path: str) -> list[Entry] | None:
    path = normalise(path)
    digest = folder_digest(root, path)
    if digest is None:
        return None
    return _rows_to_entries(path, load(digest))


class FolderPage(Sequence[Entry]):
    """The entries of one folder in display order, made into Entry objects only when read.

    Views paginate it: a page of a 100,000-entry folder builds the page's 50 Entries instead
    of all 100,000 (which cost more than decoding the blob).
    """

    def __init__(self, folder: str, rows: list[list[Any]]) -> None:
        self.folder = folder
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> Entry: ...

    @overload
    def __getitem__(self, index: slice) -> list[Entry]: ...

    def __getitem__(self, index: int | slice) -> Entry | list[Entry]:
        if isinstance(index, slice):
            return _rows_to_entries(self.folder, self.rows[index])
        return _row_to_entry(self.folder, self.rows[index])


def list_folder_ordered(root: str, path: str, *, fold_case: bool = False) -> FolderPage | None:
    """The folder at `path`, folders first, then by name (ignoring case when `fold_case`);
    None when there is no such folder."""
    path = normalise(path)
    digest = folder_digest(root, path)
    if digest is None:
        return None
    rows = load(digest)
    # Blobs hold their rows sorted by name: a stable split keeps that order.
    dirs = [row for row in rows if row[1] == "dir"]
    others = [row for row in rows if row[1] != "dir"] if dirs else rows
    if fold_case:
        dirs, others = _by_folded_name(dirs), _by_folded_name(others)
    return FolderPage(path, dirs + others)


def _by_folded_name(rows: list[list[Any]]) -> list[list[Any]]:
    """`rows` ordered by name ignoring case (stable). Sorting positions by a list of keys keeps
    every per-row step in C: a key lambda costs ten times as much for 100,000 rows."""
    keys = list(map(str.lower, map(operator.itemgetter(0), rows)))
    return [rows[index] for index in sorted(range(len(rows)), key=keys.__getitem__)]


def lookup(root: str, path: str) -> Entry | None:
    path = normalise(path)
    if not path:
        return Entry(path="", type="dir")
    parent, name = posixpath.split(path)
    digest = folder_digest(root, parent)
    if digest is None:
        return None
    row = next((r for r in load(digest) if r[0] == name), None)
    return _row_to_entry(parent, row) if row is not None else None


def walk(root: str, path: str = "") -> Iterator[Entry]:
    """Every entry under `path` (depth first), folders before their contents."""
    for folder, rows in _walk_rows(root, path):
        yield from _rows_to_entries(folder, rows)


def _walk_rows(root: str, path: str) -> Iterator[tuple[str, list[list[Any]]]]:
    """The rows of every folder under `path` (its own included) in `walk`'s order, each with
    the folder's path.

    When a folder's rows are read, the blobs of all its sub-folders are fetched at once (one
    query per `_BATCH`) and kept until each is walked: one query per folder that holds
    sub-folders instead of one per folder. A missing blob raises KeyError only when its folder
    is reached, after everything walked before it was yielded, as when each blob was loaded on
    its own.
    """
    path = normalise(path)
    digest = folder_digest(root, path)
    if digest is None:
        return
    cache: dict[str, list[list[Any]]] = {}
    uses: dict[str, int] = {}  # how many folders on the stack still need each cached blob

    def prefetch(digests: list[str]) -> None:
        wanted = set()
        for digest in digests:
            if digest:  # an empty digest is an empty folder, as in load()
                uses[digest] = uses.get(digest, 0) + 1
                if digest not in cache:
                    wanted.add(digest)
        if wanted:
            cache.update(_fetch_many(wanted))

    def take(digest: str) -> list[list[Any]]:
        if not digest:
            return []
        left = uses[digest] - 1
        if left:
            uses[digest] = left
            rows = cache.get(digest)
        else:
            del uses[digest]
            rows = cache.pop(digest, None)
        if rows is None:
            raise KeyError(f"listing blob {digest} is missing")
        return rows

    prefetch([digest])
    stack = [(path, digest)]
    while stack:
        folder, digest = stack.pop()
        rows = take(digest)
        prefix = f"{folder}/" if folder else ""
        subfolders = [(prefix + row[0], row[6]) for row in rows if row[1] == "dir"]
        if subfolders:
            prefetch([sub for _path, sub in subfolders])
        yield folder, rows
        stack.extend(subfolders)


def search(root: str, path: str, pattern: str, *, limit: int = 200) -> list[Entry]:
    """Entries under `path` whose name matches `pattern` (a glob, or a plain substring).

    A name that is not UTF-8 matches by its bytes (`caf?.txt`) and by the form pages show it
    in (`caf\\xe9`, see names.display).
    """
    glob = pattern if any(ch in pattern for ch in "*?[") else f"*{pattern}*"
    # fnmatch.fnmatch, compiled once: on POSIX it is this match on the name as given.
    match = re.compile(fnmatch.translate(glob.lower())).match
    found: list[Entry] = []
    for folder, rows in _walk_rows(root, path):
        matched = []
        for row in rows:
            name = row[0]
            if match(name.lower()) or (
                not name.isascii() and not names.is_text(name) and match(names.display(name).lower())
            ):
                matched.append(row)
                if len(found) + len(matched) >= limit:
                    break
        if matched:
            found.extend(_rows_to_entries(folder, matched))
            if len(found) >= limit:
                break
    return found


def reachable(roots: Iterable[str]) -> set[str]:
    """Every blob digest reachable from `roots` (for collecting unused blobs).

    Level by level: the blobs first reached at one depth are loaded together, one query per
    `_BATCH`, so a tree costs about one query per level instead of one per folder. KeyError
    when a reachable blob is missing.
    """
    seen: set[str] = set()
    frontier = {root for root in roots if root}
    while frontier:
        seen |= frontier
        below: set[str] = set()
        wanted = sorted(frontier)
        for start in range(0, len(wanted), _BATCH):
            blobs = _load_many(set(wanted[start : start + _BATCH]))
            for rows in blobs.values():
                below.update(row[6] for row in rows if row[1] == "dir" and row[6])
        frontier = below - seen
    return seen


def collect_garbage(roots: Iterable[str], *, grace: timedelta = timedelta(hours=6)) -> int:
    """Delete blobs no snapshot reaches, sparing those touched within `grace`."""
    keep = reachable(roots)
    old = ListingBlob.objects.filter(touched__lt=timezone.now() - grace)
    unused = [d for d in old.values_list("digest", flat=True).iterator() if d not in keep]
    for start in range(0, len(unused), _BATCH):
        ListingBlob.objects.filter(digest__in=unused[start : start + _BATCH]).delete()
    return len(unused)
