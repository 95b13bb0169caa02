"""Walking, searching and collecting listing blobs: order, content, limits, missing blobs, and the
number of queries a tree of many folders costs."""

from __future__ import annotations

import fnmatch

import pytest

from destinations import listing
from destinations.models import ListingBlob

pytestmark = pytest.mark.django_db

E = listing.Entry

# Folders are given, implied by deeper entries ("music/a/b"), empty ("empty", and "Docs/old/empty2"
# which has the same blob), and names differ in case only by letters, which blobs sort by code point.
SMALL = [
    E("Docs", "dir", mode=0o755, mtime=100),
    E("Docs/Report.TXT", "file", size=10, mtime=101, mode=0o644),
    E("Docs/notes.md", "file", size=5, mtime=102, mode=0o600),
    E("Docs/old", "dir", mode=0o700),
    E("Docs/old/report-2020.txt", "file", size=7),
    E("Docs/old/empty2", "dir"),
    E("music/a/b/song.mp3", "file", size=3000),
    E("readme.txt", "file", size=1),
    E("link", "symlink", target="Docs", mode=0o777),
    E("empty", "dir"),
    E("Photos", "dir"),
    E("Photos/IMG_001.JPG", "file", size=100),
    E("Photos/img_002.jpg", "file", size=200, extra={"pack": "p1", "offset": 3}),
    E("Photos/2021", "dir"),
    E("Photos/2021/summer.jpg", "file", size=300),
]

SMALL_ORDER = [
    "Docs",
    "Photos",
    "empty",
    "link",
    "music",
    "readme.txt",
    "music/a",
    "music/a/b",
    "music/a/b/song.mp3",
    "Photos/2021",
    "Photos/IMG_001.JPG",
    "Photos/img_002.jpg",
    "Photos/2021/summer.jpg",
    "Docs/Report.TXT",
    "Docs/notes.md",
    "Docs/old",
    "Docs/old/empty2",
    "Docs/old/report-2020.txt",
]


def _big_entries() -> list[listing.Entry]:
    """53 folders (5 top folders of 9 sub-folders each, one with a chain 3 deep) plus the root:
    54 blobs, none shared."""
    entries: list[listing.Entry] = []
    for top in range(5):
        entries.append(E(f"top{top}", "dir", mtime=top))
        entries.append(E(f"top{top}/Index{top}.HTML", "file", size=top + 1))
        for sub in range(9):
            folder = f"top{top}/sub{sub}"
            entries.append(E(folder, "dir"))
            entries.append(E(f"{folder}/file{top}{sub}.txt", "file", size=sub))
            entries.append(E(f"{folder}/Photo{top}{sub}.JPG", "file", size=10 * sub))
    entries.append(E("top0/sub0/d1/d2/d3/deep.txt", "file", size=99))
    entries.append(E("top0/sub0/d1/d2/note.TXT", "file", size=1))
    return entries


def _reference_walk(root: str, path: str = "") -> list[listing.Entry]:
    """Depth first, folders before their contents, the last folder of a folder first: built
    from list_folder alone."""
    path = listing.normalise(path)
    if listing.folder_digest(root, path) is None:
        return []
    out: list[listing.Entry] = []
    stack = [path]
    while stack:
        folder = stack.pop()
        for entry in listing.list_folder(root, folder) or []:
            out.append(entry)
            if entry.type == "dir":
                stack.append(entry.path)
    return out


def _reference_search(root: str, path: str, pattern: str, limit: int = 200) -> list[listing.Entry]:
    glob = pattern if any(ch in pattern for ch in "*?[") else f"*{pattern}*"
    found = []
    for entry in _reference_walk(root, path):
        if fnmatch.fnmatch(entry.name.lower(), glob.lower()):
            found.append(entry)
            if len(found) >= limit:
                break
    return found


def _all_digests() -> set[str]:
    return set(ListingBlob.objects.values_list("digest", flat=True))


def _paths(entries) -> list[str]:
    return [entry.path for entry in entries]


# --- walk --------------------------------------------------------------------------------------


def test_walk_order_and_content():
    root = listing.build(SMALL)
    walked = list(listing.walk(root))
    assert _paths(walked) == SMALL_ORDER
    assert walked == _reference_walk(root)
    by_path = {entry.path: entry for entry in walked}
    assert by_path["Docs"] == E("Docs", "dir", size=22, mtime=100, mode=0o755)
    assert by_path["Docs/old"] == E("Docs/old", "dir", size=7, mode=0o700)
    assert by_path["music/a"] == E("music/a", "dir", size=3000, mode=0o755)
    assert by_path["link"] == E("link", "symlink", mode=0o777, target="Docs")
    assert by_path["Photos/img_002.jpg"].extra == {"pack": "p1", "offset": 3}
    assert by_path["Photos"].size == 600
    assert [entry.name for entry in walked[:6]] == ["Docs", "Photos", "empty", "link", "music", "readme.txt"]
    assert by_path["Photos/2021/summer.jpg"].name == "summer.jpg"


def test_walk_from_a_folder():
    root = listing.build(SMALL)
    assert _paths(listing.walk(root, "Photos")) == [
        "Photos/2021",
        "Photos/IMG_001.JPG",
        "Photos/img_002.jpg",
        "Photos/2021/summer.jpg",
    ]
    assert list(listing.walk(root, "/Docs//old/")) == _reference_walk(root, "Docs/old")
    assert _paths(listing.walk(root, "Docs/old")) == ["Docs/old/empty2", "Docs/old/report-2020.txt"]
    assert list(listing.walk(root, "empty")) == []
    assert list(listing.walk(root, "readme.txt")) == []
    assert list(listing.walk(root, "nope")) == []
    assert list(listing.walk(root, "nope/deeper")) == []
    assert list(listing.walk("", "")) == []
    with pytest.raises(ValueError, match=r"\.\."):
        list(listing.walk(root, "../x"))


def test_walk_big_tree_matches_reference():
    root = listing.build(_big_entries())
    walked = list(listing.walk(root))
    assert walked == _reference_walk(root)
    assert len(walked) == 5 * 2 + 5 * 9 * 3 + 3 + 2  # tops, subs, d1-d3, two deep files
    assert [entry.path for entry in walked if entry.type == "dir"][:5] == [f"top{i}" for i in range(5)]
    assert list(listing.walk(root, "top0/sub0")) == _reference_walk(root, "top0/sub0")


def test_walk_is_lazy():
    """Stopping early works, and each entry is yielded before the next folder is entered."""
    root = listing.build(SMALL)
    walker = listing.walk(root)
    assert [next(walker).path for _ in range(3)] == SMALL_ORDER[:3]
    walker.close()


# --- search ------------------------------------------------------------------------------------


def test_search_glob_substring_case_and_limit():
    root = listing.build(SMALL)
    assert _paths(listing.search(root, "", "report")) == ["Docs/Report.TXT", "Docs/old/report-2020.txt"]
    assert _paths(listing.search(root, "", "REPORT")) == ["Docs/Report.TXT", "Docs/old/report-2020.txt"]
    assert _paths(listing.search(root, "", "*.jpg")) == [
        "Photos/IMG_001.JPG",
        "Photos/img_002.jpg",
        "Photos/2021/summer.jpg",
    ]
    assert _paths(listing.search(root, "", "img_00?.JPG")) == ["Photos/IMG_001.JPG", "Photos/img_002.jpg"]
    assert _paths(listing.search(root, "", "[R]eadme*")) == ["readme.txt"]
    assert _paths(listing.search(root, "", "[!a-z]*")) == ["Photos/2021"]
    assert _paths(listing.search(root, "", "*.jpg", limit=2)) == ["Photos/IMG_001.JPG", "Photos/img_002.jpg"]
    assert _paths(listing.search(root, "", "*.jpg", limit=1)) == ["Photos/IMG_001.JPG"]
    # The limit is checked after a match is kept: zero still returns the first match.
    assert _paths(listing.search(root, "", "*.jpg", limit=0)) == ["Photos/IMG_001.JPG"]
    assert _paths(listing.search(root, "Photos/2021", "jpg")) == ["Photos/2021/summer.jpg"]
    assert _paths(listing.search(root, "", "o")) == [
        "Docs",
        "Photos",
        "music/a/b/song.mp3",
        "Docs/Report.TXT",
        "Docs/notes.md",
        "Docs/old",
        "Docs/old/report-2020.txt",
    ]
    assert listing.search(root, "", "nothing-like-this") == []
    assert listing.search(root, "nope", "*") == []
    assert listing.search("", "", "*") == []
    found = listing.search(root, "", "img_002")
    assert found == [E("Photos/img_002.jpg", "file", size=200, extra={"pack": "p1", "offset": 3})]
    assert found[0].name == "img_002.jpg"
    everything = listing.search(root, "", "*")
    assert everything == list(listing.walk(root))
    assert listing.search(root, "", "") == everything


@pytest.mark.parametrize(
    ("path", "pattern", "limit"),
    [
        ("", "txt", 200),
        ("", "*.jpg", 200),
        ("", "*.JPG", 7),
        ("", "photo1?.jpg", 200),
        ("", "[fp]*", 30),
        ("top0", "*", 1000),
        ("top0", "", 5),
        ("", "sub", 200),
        ("top3/sub4", "*", 200),
        ("", "deep", 200),
    ],
)
def test_search_big_tree_matches_reference(path, pattern, limit):
    root = listing.build(_big_entries())
    found = listing.search(root, path, pattern, limit=limit)
    assert found == _reference_search(root, path, pattern, limit)
    assert [entry.name for entry in found] == [
        entry.name for entry in _reference_search(root, path, pattern, limit)
    ]


# --- reachable ---------------------------------------------------------------------------------


def test_reachable_is_every_blob_of_the_tree():
    root = listing.build(SMALL)
    digests = _all_digests()
    assert len(digests) == 9  # 10 folders; "empty" and "Docs/old/empty2" share a blob
    assert listing.reachable([root]) == digests
    assert listing.reachable([root, "", root]) == digests
    assert listing.reachable([]) == set()
    assert listing.reachable([""]) == set()
    assert listing.reachable(iter([root])) == digests


def test_reachable_several_roots():
    first = listing.build(SMALL)
    first_digests = _all_digests()
    second = listing.build([*SMALL, E("Photos/2021/autumn.jpg", "file", size=5)])
    big = listing.build(_big_entries())
    every = _all_digests()
    assert listing.reachable([first]) == first_digests
    # The second tree shares Docs and its sub-folders with the first, not the root or Photos.
    second_digests = listing.reachable([second])
    assert len(second_digests) == 9
    assert len(second_digests & first_digests) == 6
    assert listing.reachable([first, second, big]) == every
    assert len(listing.reachable([big])) == 54
    assert listing.reachable([big, first, second]) == every


def test_collect_garbage_keeps_reachable_blobs():
    from datetime import timedelta

    keep = listing.build(SMALL)
    listing.build(_big_entries())
    kept = listing.reachable([keep])
    assert (
        listing.collect_garbage([keep], grace=timedelta(0)) == 54
    )  # the big tree shares no blob with the kept one
    assert _all_digests() == kept


# --- missing blobs -----------------------------------------------------------------------------


def _drop(root: str, folder: str) -> str:
    digest = listing.folder_digest(root, folder)
    assert digest
    deleted, _ = ListingBlob.objects.filter(digest=digest).delete()
    assert deleted == 1
    return digest


def test_missing_blob_raises_keyerror_from_reachable():
    root = listing.build(SMALL)
    digest = _drop(root, "Docs/old")
    with pytest.raises(KeyError) as caught:
        listing.reachable([root])
    assert digest in str(caught.value)
    # A root that does not reach the missing blob is fine.
    photos = listing.folder_digest(root, "Photos")
    assert photos
    assert len(listing.reachable([photos])) == 2


def test_missing_root_blob_raises_keyerror():
    root = listing.build(SMALL)
    ListingBlob.objects.filter(digest=root).delete()
    with pytest.raises(KeyError) as caught:
        listing.reachable([root])
    assert root in str(caught.value)
    with pytest.raises(KeyError) as caught:
        list(listing.walk(root))
    assert root in str(caught.value)


def test_missing_deep_blob_raises_keyerror_from_reachable():
    root = listing.build(_big_entries())
    digest = _drop(root, "top0/sub0/d1/d2/d3")
    with pytest.raises(KeyError) as caught:
        listing.reachable([root])
    assert digest in str(caught.value)


def test_missing_blob_raises_keyerror_from_walk_where_it_did():
    root = listing.build(SMALL)
    expected = list(listing.walk(root))
    digest = _drop(root, "Docs/old")
    seen: list[listing.Entry] = []
    with pytest.raises(KeyError) as caught:
        seen.extend(listing.walk(root))  # keeps what was yielded before the error
    assert digest in str(caught.value)
    # Everything before the missing folder's contents is still yielded, in the same order.
    assert seen == expected[: SMALL_ORDER.index("Docs/old") + 1]


def test_missing_blob_and_search():
    root = listing.build(SMALL)
    _drop(root, "Docs/old")
    # Photos is walked before Docs: a search that stops there never needs the missing blob.
    assert _paths(listing.search(root, "", "*.jpg", limit=3)) == [
        "Photos/IMG_001.JPG",
        "Photos/img_002.jpg",
        "Photos/2021/summer.jpg",
    ]
    assert _paths(listing.search(root, "", "song", limit=1)) == ["music/a/b/song.mp3"]
    with pytest.raises(KeyError):
        listing.search(root, "", "*.jpg")
    with pytest.raises(KeyError):
        listing.search(root, "Docs", "*")
    assert _paths(listing.search(root, "Photos", "*")) == _SMALL_PHOTOS


_SMALL_PHOTOS = ["Photos/2021", "Photos/IMG_001.JPG", "Photos/img_002.jpg", "Photos/2021/summer.jpg"]


def test_missing_blob_deep_in_big_tree_from_walk():
    root = listing.build(_big_entries())
    expected = list(listing.walk(root))
    _drop(root, "top0/sub0/d1/d2")
    seen: list[listing.Entry] = []
    with pytest.raises(KeyError):
        seen.extend(listing.walk(root))
    assert seen == expected[: _paths(expected).index("top0/sub0/d1/d2") + 1]


# --- queries -----------------------------------------------------------------------------------


def test_walk_and_reachable_query_counts(django_assert_max_num_queries):
    """54 folder blobs: reachable costs one query per depth (6), walk one for the start folder
    and one per folder that holds sub-folders (1 + 9), not one per folder."""
    root = listing.build(_big_entries())
    expected_walk = _reference_walk(root)
    expected_search = _reference_search(root, "", "photo")
    expected_top2 = _reference_walk(root, "top2")
    expected_reachable = _all_digests()
    assert len(expected_reachable) == 54
    with django_assert_max_num_queries(6):
        assert listing.reachable([root]) == expected_reachable
    with django_assert_max_num_queries(10):
        assert list(listing.walk(root)) == expected_walk
    with django_assert_max_num_queries(10):
        assert listing.search(root, "", "photo") == expected_search
    # From a folder: folder_digest reads the root, then the folder and its one sub-folder level.
    with django_assert_max_num_queries(3):
        assert list(listing.walk(root, "top2")) == expected_top2


def test_reachable_and_walk_in_small_batches(monkeypatch, django_assert_max_num_queries):
    """Levels wider than a batch are loaded a batch at a time, with the same result."""
    root = listing.build(_big_entries())
    expected_walk = _reference_walk(root)
    expected_reachable = _all_digests()
    monkeypatch.setattr(listing, "_BATCH", 4)
    # Depths hold 1, 5, 45, 1, 1, 1 blobs: 1 + 2 + 12 + 1 + 1 + 1 batches.
    with django_assert_max_num_queries(18):
        assert listing.reachable([root]) == expected_reachable
    # Root, its 5 sub-folders (2 batches), 9 sub-folders of each top folder (3 batches each), 3.
    with django_assert_max_num_queries(1 + 2 + 5 * 3 + 3):
        assert list(listing.walk(root)) == expected_walk
