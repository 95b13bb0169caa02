"""A new generation's listing, derived from the previous one by patching only the folders that
changed, must be exactly the listing built from scratch: same root digest, so same blobs."""

from __future__ import annotations

import dataclasses
import random

import pytest

from destinations import listing
from destinations.formats.native.manifest import ChunkRef, Entry
from jobs import catalog

pytestmark = pytest.mark.django_db


def _file(path: str, rng: random.Random) -> Entry:
    size = rng.randrange(0, 5000)
    chunks = (ChunkRef("p1", 0, size, "raw", size),) if size else ()
    return Entry(path.encode(), "f", 0o644, rng.randrange(10**18), size, "0" * 64, None, chunks)


def _dir(path: str, rng: random.Random) -> Entry:
    return Entry(path.encode(), "d", 0o755, rng.randrange(10**18))


def _listed(entries: list[Entry]) -> list[listing.Entry]:
    return [catalog._listing_entry(entry) for entry in entries]


def _tree(rng: random.Random) -> list[Entry]:
    entries: list[Entry] = []
    folders = [""]
    for number in range(rng.randrange(20, 80)):
        parent = rng.choice(folders)
        path = f"{parent}/n{number}" if parent else f"n{number}"
        if rng.random() < 0.25:
            entries.append(_dir(path, rng))
            folders.append(path)
        elif rng.random() < 0.1:
            entries.append(Entry(path.encode(), "l", 0o777, 1, link=b"../target"))
        else:
            entries.append(_file(path, rng))
    return entries


def _mutate(before: list[Entry], rng: random.Random) -> list[Entry]:
    """Edit, add, remove files; add and remove folders (with what they hold); turn a file into a
    folder and a folder into a file. Kept entries stay the very same objects, as in a run."""
    after = list(before)
    for _ in range(rng.randrange(1, 8)):
        index = rng.randrange(len(after)) if after else 0
        action = rng.random()
        if not after or action < 0.2:
            dirs = [e.path.decode() for e in after if e.type == "d"] + [""]
            parent = rng.choice(dirs)
            name = f"new{rng.randrange(10**6)}"
            path = f"{parent}/{name}" if parent else name
            after.append(_dir(path, rng))
            after.append(_file(f"{path}/inside", rng))
            continue
        entry = after[index]
        prefix = entry.path + b"/"
        if action < 0.5:
            if entry.type == "f":
                after[index] = dataclasses.replace(entry, size=entry.size + 1, chunks=())
            else:
                after[index] = dataclasses.replace(entry, mtime_ns=entry.mtime_ns + 1)
        elif action < 0.7:  # removed, with whatever it held
            after = [e for e in after if e.path != entry.path and not e.path.startswith(prefix)]
        elif action < 0.85 and entry.type == "f":  # a file becomes a folder holding one file
            after[index] = _dir(entry.path.decode(), rng)
            after.append(_file(entry.path.decode() + "/x", rng))
        elif entry.type == "d":  # a folder becomes a file
            after = [e for e in after if not e.path.startswith(prefix)]
            after[after.index(entry)] = _file(entry.path.decode(), rng)
    rng.shuffle(after)
    return after


@pytest.mark.parametrize("seed", range(40))
def test_patched_listing_equals_the_listing_built_from_scratch(seed: int) -> None:
    """
    GIVEN a random well-formed tree and a random next generation of it (edits, additions,
          removals, whole folders added and removed, files and folders swapping type)
    WHEN the next listing is derived from the previous one
    THEN its root digest is the one `listing.build` gives for the whole new tree
    """
    rng = random.Random(seed)
    before = _tree(rng)
    after = _mutate(before, rng)
    root = listing.build(_listed(before))

    changes = catalog._listing_changes(before, after)

    assert changes is not None
    assert listing.update(root, changes) == listing.build(_listed(after))


def test_ill_formed_trees_are_built_from_scratch() -> None:
    """
    GIVEN generations whose entries name a file as a folder, or list a path twice
    WHEN their changes are asked for
    THEN there are none to patch with: the caller builds the listing whole
    """
    rng = random.Random(1)
    base = [_dir("a", rng), _file("a/f", rng)]
    orphan = [*base, _file("missing/f", rng)]  # "missing" has no entry of its own
    twice = [*base, _file("a/f", rng)]
    under_file = [*base, _file("a/f/g", rng)]

    assert catalog._listing_changes(base, orphan) is None
    assert catalog._listing_changes(base, twice) is None
    assert catalog._listing_changes(base, under_file) is None
    assert catalog._listing_changes(orphan, base) is None


def test_a_missing_blob_makes_update_refuse() -> None:
    rng = random.Random(2)
    before = [_dir("a", rng), _file("a/f", rng)]
    root = listing.build(_listed(before))
    listing.ListingBlob.objects.exclude(digest=root).delete()

    with pytest.raises(KeyError):
        listing.update(root, {"a/g": catalog._listing_entry(_file("a/g", rng))})
