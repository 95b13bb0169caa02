"""What the native engine refuses: hostile manifests, symlinks in the way, damaged data; and what
the scan leaves out. Hostile destination content is staged with the local fake (tests/support/fakes.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import zstandard

from destinations.formats import native
from destinations.formats.native import manifest_codec as native_manifest
from destinations.formats.native.manifest import Entry
from destinations.formats.native.manifest_codec import decode_manifest, encode_manifest
from destinations.localfs import SafeTree, UnsafePath
from tests.support.fakes import FakeSession, Recorder, tree_state, write_test_backup

SECRET = b"TOP-SECRET-OUTSIDE-THE-HOME"


@pytest.fixture
def fake(tmp_path: Path) -> FakeSession:
    return FakeSession(tmp_path / "destination")


def backup(fake: FakeSession, home: Path | None, **options: object) -> native.Manifest:
    return write_test_backup(fake, home, **({"account": "dave"} | options))


def small_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "public_html").mkdir(parents=True)
    (home / "public_html" / "index.html").write_bytes(b"<html>site</html>\n")
    (home / "notes.txt").write_bytes(b"notes\n")
    return home


def commit_hostile(fake: FakeSession, manifest: native.Manifest) -> native.Manifest:
    """Write `manifest` as the slot's next generation and read it back like a restore would."""
    manifest.generation += 1
    (fake.root / manifest.path / manifest.name).write_bytes(encode_manifest(manifest))
    with fake.connection() as conn:
        return native.read_manifest(conn, manifest.path)


def test_materialise_refuses_entries_that_leave_the_target(fake: FakeSession, tmp_path: Path) -> None:
    """
    GIVEN a manifest on the destination whose entries are named '../evil', '/tmp/...', 'a/../../x',
          'a//b' and 'x/./y', pointing at real stored bytes, beside one ordinary entry
    WHEN the backup is materialised
    THEN every hostile entry is refused and reported, nothing is written outside the target,
         and the ordinary entry is restored
    """
    home = small_home(tmp_path)
    manifest = backup(fake, home)
    good = manifest.entry_map()[b"notes.txt"]
    outside = tmp_path / "outside-abs"
    hostile = [
        b"../evil",
        os.fsencode(outside / "evil"),
        b"a/../../evil2",
        b"a//b",
        b"x/./y",
    ]
    manifest.entries = [good] + [
        Entry(path, "f", 0o644, good.mtime_ns, good.size, good.sha256, None, good.chunks) for path in hostile
    ]
    manifest.entries.append(Entry(b"../link", "l", 0o777, 0, link=b"/etc/passwd"))
    read_back = commit_hostile(fake, manifest)
    out = tmp_path / "restore" / "target"
    out.mkdir(parents=True)

    result = native.materialise(fake, read_back.path, read_back, out)

    refused = {path for path, reason in result.skipped if reason.startswith("refused")}
    assert refused == {os.fsdecode(p) for p in [*hostile, b"../link"]}
    assert result.files == 1
    assert sorted(os.listdir(tmp_path / "restore")) == ["target"]
    assert not outside.exists()
    assert (out / "notes.txt").read_bytes() == b"notes\n"


def test_materialise_never_writes_through_a_symlink_in_the_target(fake: FakeSession, tmp_path: Path) -> None:
    """
    GIVEN a restore target where public_html is a symlink to a folder outside it
    WHEN the backup is materialised without overwrite, then with overwrite
    THEN without overwrite the files under public_html are refused and the outside folder stays
         empty; with overwrite the symlink itself is replaced by a real folder (never followed)
    """
    home = small_home(tmp_path)
    manifest = backup(fake, home)
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(outside, out / "public_html")

    first = native.materialise(fake, manifest.path, manifest, out)

    assert ("public_html/index.html", "cannot write: ") in [(p, r[:14]) for p, r in first.skipped]
    assert list(outside.iterdir()) == []

    second = native.materialise(fake, manifest.path, manifest, out, overwrite=True)

    assert second.skipped == []
    assert list(outside.iterdir()) == []
    assert not (out / "public_html").is_symlink()
    assert (out / "public_html" / "index.html").read_bytes() == b"<html>site</html>\n"


def test_existing_files_are_kept_unless_overwrite(fake: FakeSession, tmp_path: Path) -> None:
    """
    GIVEN a restore target that already holds notes.txt
    WHEN the backup is materialised without, then with overwrite
    THEN the first run keeps the existing file and reports it, the second replaces it
    """
    home = small_home(tmp_path)
    manifest = backup(fake, home)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_bytes(b"local edit")

    kept = native.materialise(fake, manifest.path, manifest, out)
    assert ("notes.txt", "exists (not overwritten)") in kept.skipped
    assert (out / "notes.txt").read_bytes() == b"local edit"

    native.materialise(fake, manifest.path, manifest, out, overwrite=True)
    assert (out / "notes.txt").read_bytes() == b"notes\n"
    assert not [p for p in out.rglob("*") if p.name.startswith(".backupsite-restore-")]


def test_damaged_pack_bytes_are_detected_and_never_restored(fake: FakeSession, tmp_path: Path) -> None:
    """
    GIVEN a backup whose pack has one flipped byte inside a stored (raw) file
    WHEN it is materialised
    THEN that file is reported as damaged and not written; the other files are restored
    """
    home = small_home(tmp_path)
    manifest = backup(fake, home, compression=False)
    chunk = manifest.entry_map()[b"notes.txt"].chunks[0]
    pack = fake.root / manifest.path / "packs" / chunk.pack
    data = bytearray(pack.read_bytes())
    data[chunk.offset] ^= 0xFF
    pack.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()

    result = native.materialise(fake, manifest.path, manifest, out)

    assert result.skipped == [("notes.txt", "sha256 mismatch: the stored data is damaged")]
    assert not (out / "notes.txt").exists()
    assert (out / "public_html" / "index.html").exists()


def test_truncated_newest_manifest_falls_back_and_foreign_manifest_is_refused(
    fake: FakeSession, tmp_path: Path
) -> None:
    """
    GIVEN a slot whose generation-2 manifest is truncated (a damaged upload)
    WHEN the manifest is read
    THEN generation 1 is used; and a manifest of another account copied into the slot is
         refused as corrupt rather than restored into the wrong account
    """
    home = small_home(tmp_path)
    manifest = backup(fake, home)
    slot = fake.root / manifest.path
    data = (slot / manifest.name).read_bytes()
    (slot / "manifest-000002.json.zst").write_bytes(data[: len(data) // 2])

    with fake.connection() as conn:
        assert native.read_manifest(conn, manifest.path).generation == 1

    other = backup(fake, home, account="eve")
    foreign = (fake.root / other.path / other.name).read_bytes()
    (slot / "manifest-000001.json.zst").write_bytes(foreign)
    (slot / "manifest-000002.json.zst").unlink()
    with fake.connection() as conn, pytest.raises(native.ManifestCorrupt, match="belongs to account 'eve'"):
        native.read_manifest(conn, manifest.path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("offset", 10**9, "beyond the end"),
        ("pack", "../../other/000001-00000.pack", "pack the header does not list"),
        ("length", 2**40, "invalid chunk codec or length"),
    ],
)
def test_decoding_refuses_chunk_references_that_do_not_fit(
    fake: FakeSession, tmp_path: Path, field: str, value: object, message: str
) -> None:
    """
    GIVEN a manifest whose chunk reference points past its pack, into an unlisted pack, or
          claims a huge decompressed length
    WHEN it is decoded
    THEN it is refused as corrupt
    """
    manifest = backup(fake, small_home(tmp_path))
    entry = manifest.entry_map()[b"notes.txt"]
    chunk = entry.chunks[0]
    pack = str(value) if field == "pack" else chunk.pack
    offset = int(value) if field == "offset" else chunk.offset  # type: ignore[call-overload]
    length = int(value) if field == "length" else chunk.length  # type: ignore[call-overload]
    entry.chunks = (native.ChunkRef(pack, offset, chunk.stored, "zstd", length),)
    entry.size = length

    with pytest.raises(native.ManifestCorrupt, match=message):
        decode_manifest(encode_manifest(manifest))


def test_scan_skips_special_files_and_applies_excludes(tmp_path: Path) -> None:
    """
    GIVEN a home with a FIFO, a UNIX socket, a cache folder, logs and a tmp folder
    WHEN it is scanned with the excludes 'public_html/cache/', '*.log' and 'tmp/*'
    THEN special files are reported as skipped, the excluded folder and files are absent
         (tmp itself stays, empty), and links are recorded as links
    """
    import socket

    home = tmp_path / "home"
    (home / "public_html" / "cache" / "deep").mkdir(parents=True)
    (home / "public_html" / "cache" / "deep" / "page.html").write_bytes(b"x")
    (home / "public_html" / "index.php").write_bytes(b"<?php")
    (home / "logs").mkdir()
    (home / "logs" / "access.log").write_bytes(b"GET /")
    (home / "error.log").write_bytes(b"oops")
    (home / "tmp").mkdir()
    (home / "tmp" / "session").write_bytes(b"s")
    os.mkfifo(home / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(home / "mysql.sock"))
    os.symlink("public_html", home / "www")
    try:
        tree = native.scan_source(home, ["public_html/cache/", "*.log", "tmp/*"])
    finally:
        sock.close()

    paths = {entry.path: entry.type for entry in tree.entries}
    assert paths == {
        b"logs": "d",
        b"public_html": "d",
        b"public_html/index.php": "f",
        b"tmp": "d",
        b"www": "l",
    }
    assert {(s.display, s.reason) for s in tree.skipped} == {
        ("pipe", "FIFO skipped"),
        ("mysql.sock", "socket skipped"),
    }
    assert tree.excluded == 4


def test_a_folder_swapped_for_a_symlink_after_the_scan_is_not_followed(
    fake: FakeSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    GIVEN a user who replaces the folder 'site' with a symlink to a folder outside the home
          (holding a file of the same name) between the scan and the read
    WHEN the backup is written
    THEN the swapped file is skipped and reported, and no byte of the outside file is stored
    """
    home = tmp_path / "home"
    (home / "site").mkdir(parents=True)
    (home / "site" / "config.php").write_bytes(b"harmless")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.php").write_bytes(SECRET)
    import destinations.formats.native.write as native_write

    real_scan = native_write.scan_source

    def scan_then_swap(root: Path, excludes: list[str]) -> native.SourceTree:
        tree = real_scan(root, excludes)
        (home / "site" / "config.php").unlink()
        (home / "site").rmdir()
        os.symlink(outside, home / "site")
        return tree

    monkeypatch.setattr(native_write, "scan_source", scan_then_swap)
    progress = Recorder()

    manifest = backup(fake, home, progress=progress, compression=False)

    assert b"site/config.php" not in manifest.entry_map()
    assert "skipped site/config.php" in progress.text()
    stored = b"".join(p.read_bytes() for p in (fake.root / manifest.path).rglob("*.pack"))
    assert SECRET not in stored


def test_mailboxes_become_email_account_parts(fake: FakeSession, tmp_path: Path) -> None:
    """
    GIVEN cPanel Maildirs mail/example.com/info and mail/shop.org/sales, plus the account's
          default mailbox mail/cur and a non-Maildir folder
    WHEN the home is backed up
    THEN the manifest has a homedir part and one email_accounts part per box, sized by its bytes
    """
    home = tmp_path / "home"
    for box, size in (("example.com/info", 300), ("shop.org/sales", 50)):
        for folder in ("cur", "new", "tmp"):
            (home / "mail" / box / folder).mkdir(parents=True)
        (home / "mail" / box / "cur" / "1.host:2,S").write_bytes(b"m" * size)
    (home / "mail" / "cur").mkdir()
    (home / "mail" / "cur" / "2.host:2,").write_bytes(b"default box")
    (home / "mail" / "example.com" / "not-a-box").mkdir()

    manifest = backup(fake, home)

    assert [(p.kind, p.name, p.size) for p in manifest.parts] == [
        ("homedir", "", 361),
        ("email_accounts", "info@example.com", 300),
        ("email_accounts", "sales@shop.org", 50),
    ]


def test_compression_chooses_zstd_only_where_it_pays(fake: FakeSession, tmp_path: Path) -> None:
    """
    GIVEN text, random bytes, and text named like a JPEG
    WHEN backed up with compression on, and again with it off
    THEN only the text is a zstd frame with compression on, and everything is raw with it off
    """
    home = tmp_path / "home"
    home.mkdir()
    (home / "page.html").write_bytes(b"<p>hello world</p>\n" * 500)
    (home / "random.bin").write_bytes(os.urandom(5000))
    (home / "text.jpg").write_bytes(b"<p>hello world</p>\n" * 500)

    on = backup(fake, home).entry_map()
    off = backup(fake, home, compression=False).entry_map()

    assert {path: entry.chunks[0].codec for path, entry in on.items()} == {
        b"page.html": "zstd",
        b"random.bin": "raw",
        b"text.jpg": "raw",
    }
    assert {entry.chunks[0].codec for entry in off.values()} == {"raw"}


def test_safe_tree_refuses_unsafe_paths_and_drops_setuid(tmp_path: Path) -> None:
    """
    GIVEN a SafeTree on an empty folder
    WHEN paths that are absolute, hold '..' or NUL, are used, and a setuid file is finished
    THEN the paths are refused with UnsafePath, and the file keeps rwx bits without setuid
    """
    with SafeTree(tmp_path) as tree:
        for bad in ("/etc/passwd", "../x", "a/../../x", "a\x00b", "", "a//b"):
            with pytest.raises(UnsafePath):
                tree.open_file(bad)
        handle = tree.open_file("bin/tool")
        handle.write(b"#!/bin/sh\n")
        tree.finish_file(handle, mode=0o6755, mtime_ns=1_000_000_000_123)
    st = os.stat(tmp_path / "bin" / "tool")
    assert st.st_mode & 0o7777 == 0o755
    assert st.st_mtime_ns == 1_000_000_000_123
    assert tree_state(tmp_path)[b"bin/tool"][0] == "f"


def test_materialise_gives_everything_to_the_requested_owner(fake: FakeSession, tmp_path: Path) -> None:
    """
    GIVEN a backup with a folder, files and a symlink
    WHEN it is materialised with owner=(uid, gid) (the restore runs as root)
    THEN every restored entry, the symlink itself included, belongs to that owner
    """
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    home = small_home(tmp_path)
    os.symlink("public_html/index.html", home / "link")
    manifest = backup(fake, home)
    out = tmp_path / "out"
    out.mkdir()

    native.materialise(fake, manifest.path, manifest, out, owner=(4321, 4322))

    owners = {(p.lstat().st_uid, p.lstat().st_gid) for p in out.rglob("*")}
    assert owners == {(4321, 4322)}


def test_fast_and_strict_decoding_agree_and_a_bad_line_is_named(fake: FakeSession, tmp_path: Path) -> None:
    """
    GIVEN a committed manifest holding files, folders, a symlink and a name that is not UTF-8
    WHEN it is decoded (the fast path for plain lines, the strict one for the rest), and again
         after one file's digest is made invalid
    THEN the entries equal those the strict line-by-line decoder gives, re-encoding gives the
         same bytes, and the damaged manifest is refused naming its line
    """
    home = small_home(tmp_path)
    (home / "public_html" / "link").symlink_to("index.html")
    (home / os.fsdecode(b"caf\xe9.txt")).write_bytes(b"latin-1 name\n")
    manifest = backup(fake, home)
    data = encode_manifest(manifest)

    decoded = decode_manifest(data)
    text = zstandard.ZstdDecompressor().decompress(data)
    body = text[text.index(b"\n") + 1 :]
    packs = {pack.name: pack for pack in decoded.packs}

    assert decoded.entries == manifest.entries
    assert decoded.entries == native_manifest._decode_lines(body, packs)
    assert {entry.type for entry in decoded.entries} == {"f", "d", "l"}
    assert encode_manifest(decoded) == data

    victim = next(n for n, e in enumerate(manifest.entries) if e.type == "f" and e.path.isascii())
    manifest.entries[victim].sha256 = "G" * 64
    with pytest.raises(native.ManifestCorrupt, match=f"line {victim + 2}: file sha256"):
        decode_manifest(encode_manifest(manifest))


def test_owners_round_trip_through_fast_and_strict_decoding(fake: FakeSession, tmp_path: Path) -> None:
    """
    GIVEN a home owned by 4321:4322 with a root-owned folder, a file of another user and a
          symlink in another group
    WHEN it is backed up and the manifest decoded
    THEN only those entries carry an owner, the header names the account's ids, and the fast
         and the strict decoders give the same entries and bytes back
    """
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    home = small_home(tmp_path)
    os.symlink("notes.txt", home / "link")
    for path in [home, *home.rglob("*")]:
        os.lchown(path, 4321, 4322)
    os.chown(home / "public_html", 0, 0)
    os.chown(home / "notes.txt", 5001, 4322)
    os.lchown(home / "link", 4321, 99)
    manifest = backup(fake, home)
    data = encode_manifest(manifest)

    decoded = decode_manifest(data)
    text = zstandard.ZstdDecompressor().decompress(data)
    packs = {pack.name: pack for pack in decoded.packs}

    assert decoded.owner == (4321, 4322)
    assert decoded.users[0] == "root"
    owners = {e.path: (e.uid, e.gid) for e in decoded.entries}
    assert owners == {
        b"public_html": (0, 0),
        b"public_html/index.html": (None, None),
        b"notes.txt": (5001, None),
        b"link": (None, 99),
    }
    assert decoded.entries == native_manifest._decode_lines(text[text.index(b"\n") + 1 :], packs)
    assert encode_manifest(decoded) == data
    lines = {json.loads(line)["p"]: line for line in text.split(b"\n")[1:-1]}
    assert b'"u"' not in lines["public_html/index.html"]  # the account's: nothing per entry
    assert b'"g"' not in lines["public_html/index.html"]
    assert lines["notes.txt"].endswith(b',"u":5001}')


def test_a_manifest_without_owners_gives_every_entry_to_the_account(
    fake: FakeSession, tmp_path: Path
) -> None:
    """
    GIVEN a manifest as written before owners were recorded (no owner, users, groups, u, g)
    WHEN it is decoded and its owners mapped for an account now at 7000:7001
    THEN every entry belongs to 7000:7001
    """
    from destinations.formats import ownership

    manifest = backup(fake, small_home(tmp_path))
    manifest.owner, manifest.users, manifest.groups = None, {}, {}
    data = encode_manifest(manifest)
    assert b'"owner"' not in zstandard.ZstdDecompressor().decompress(data)

    decoded = decode_manifest(data)
    owners = ownership.Owners(decoded, (7000, 7001))

    assert decoded.owner is None
    assert {owners.of(entry) for entry in decoded.entries} == {(7000, 7001)}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"uid": -1}, "'u' must be an integer"),
        ({"uid": 2**32 - 1}, "'u' must be an integer"),
        ({"gid": True}, "'g' must be an integer"),
        ({"users": {0: "ro:ot"}}, "invalid name"),
        ({"groups": {0: "bad\nname"}}, "invalid name"),
        ({"owner": (-5, 0)}, "owner's uid"),
    ],
)
def test_hostile_owner_fields_are_refused(
    fake: FakeSession, tmp_path: Path, change: dict[str, object], message: str
) -> None:
    """GIVEN a manifest with an owner id or name no system has WHEN decoded THEN it is refused, saying why."""
    manifest = backup(fake, small_home(tmp_path))
    entry = next(e for e in manifest.entries if e.type == "f")
    entry.uid = change.get("uid", entry.uid)  # type: ignore[assignment]
    entry.gid = change.get("gid", entry.gid)  # type: ignore[assignment]
    manifest.users = change.get("users", manifest.users)  # type: ignore[assignment]
    manifest.groups = change.get("groups", manifest.groups)  # type: ignore[assignment]
    manifest.owner = change.get("owner", manifest.owner)  # type: ignore[assignment]

    with pytest.raises(native.ManifestCorrupt, match=message):
        decode_manifest(encode_manifest(manifest))
