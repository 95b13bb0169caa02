"""The native manifest's codec: encoding, and strict decoding.

Decoding validates every field: a manifest comes from a remote server and is untrusted data.
Path *safety* (absolute paths, '..') is checked where paths are used (materialise), so a
hostile entry can be reported and skipped rather than hiding the rest of the backup.
"""

from __future__ import annotations

import base64
import binascii
import json
import json.scanner
from datetime import UTC, datetime
from typing import Any

import zstandard

from destinations.gcpause import no_gc

from .common import (
    ACCOUNT_RE,
    BACKUP_ID_RE,
    DB_DIR,
    FORMAT_NAME,
    FORMAT_VERSION,
    MAX_CHUNK_RAW,
    PACK_RE,
    ManifestCorrupt,
)
from .manifest import MAX_ID, ChunkRef, DatabaseInfo, Entry, Manifest, PackInfo, Part, valid_owner_name

MAX_MANIFEST_BYTES = 2 * 1024 * 1024 * 1024  # decompressed; ~10 M entries


# --- encoding -------------------------------------------------------------------------------


def _path_field(key: str, raw: bytes, out: dict[str, Any]) -> None:
    try:
        out[key] = raw.decode("utf-8")
    except UnicodeDecodeError:
        out[key + "b"] = base64.b64encode(raw).decode("ascii")


def entry_to_json(entry: Entry) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _path_field("p", entry.path, out)
    out["t"] = entry.type
    out["m"] = entry.mode
    out["mt"] = entry.mtime_ns
    if entry.type == "f":
        out["s"] = entry.size
        out["h"] = entry.sha256
        out["k"] = [[c.pack, c.offset, c.stored, c.codec, c.length] for c in entry.chunks]
    elif entry.type == "l" and entry.link is not None:
        _path_field("l", entry.link, out)
    if entry.uid is not None:
        out["u"] = entry.uid
    if entry.gid is not None:
        out["g"] = entry.gid
    return out


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
_quote: Any = json.encoder.encode_basestring  # a JSON string literal, as _dumps writes it (C)


def _entry_line(entry: Entry) -> str:
    """entry_to_json(entry) as _dumps writes it, without building the dict.

    Only for the shapes the engine writes (int fields, a UTF-8 path, a file or a folder);
    anything else goes through entry_to_json.
    """
    kind = entry.type
    mode, mtime = entry.mode, entry.mtime_ns
    if (
        type(mode) is int
        and type(mtime) is int
        and (kind == "d" or kind == "f")
        and entry.uid is None
        and entry.gid is None
    ):
        try:
            path = _quote(entry.path.decode("utf-8"))
        except UnicodeDecodeError:
            return _dumps(entry_to_json(entry))
        if kind == "d":
            return f'{{"p":{path},"t":"d","m":{mode},"mt":{mtime}}}'
        size, sha = entry.size, entry.sha256
        refs = []
        for c in entry.chunks:
            offset, stored, length = c.offset, c.stored, c.length
            if type(offset) is not int or type(stored) is not int or type(length) is not int:
                return _dumps(entry_to_json(entry))
            try:  # _quote refuses what is not a str
                refs.append(f"[{_quote(c.pack)},{offset},{stored},{_quote(c.codec)},{length}]")
            except TypeError:
                return _dumps(entry_to_json(entry))
        if type(size) is int and type(sha) is str:
            return f'{{"p":{path},"t":"f","m":{mode},"mt":{mtime},"s":{size},"h":{_quote(sha)},"k":[{",".join(refs)}]}}'
    return _dumps(entry_to_json(entry))


def encode_manifest(manifest: Manifest) -> bytes:
    """The manifest object: zstd of its JSON Lines."""
    parts = [_dumps(manifest.header()).encode("utf-8")]
    parts.extend(_entry_line(entry).encode("utf-8") for entry in manifest.entries)
    parts.append(b"")
    compressor = zstandard.ZstdCompressor(level=3, write_checksum=True, write_content_size=True)
    return compressor.compress(b"\n".join(parts))


# --- decoding -------------------------------------------------------------------------------


class _Bad(Exception):
    pass


def _int(obj: dict[str, Any], key: str, *, minimum: int = 0) -> int:
    value = obj.get(key)
    if type(value) is not int or value < minimum:
        raise _Bad(f"{key!r} must be an integer >= {minimum}")
    return value


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _Bad(f"{key!r} must be a string")
    return value


def _sha(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) != 64 or value.strip("0123456789abcdef"):
        raise _Bad(f"{what} must be a lowercase sha256 hex digest")
    return value


def _raw_path(obj: dict[str, Any], key: str) -> bytes | None:
    if key in obj:
        value = obj[key]
        if not isinstance(value, str):
            raise _Bad(f"{key!r} must be a string")
        return value.encode("utf-8", "surrogatepass")
    if key + "b" in obj:
        value = obj[key + "b"]
        if not isinstance(value, str):
            raise _Bad(f"{key + 'b'!r} must be a base64 string")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _Bad(f"{key + 'b'!r} is not valid base64") from exc
    return None


def _parse_created(value: object) -> datetime:
    if not isinstance(value, str):
        raise _Bad("'created' must be an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _Bad("'created' is not ISO 8601") from exc
    if moment.tzinfo is None:
        raise _Bad("'created' has no time zone")
    return moment.astimezone(UTC)


def _decode_header(head: dict[str, Any]) -> Manifest:
    if head.get("format") != FORMAT_NAME:
        raise _Bad(f"not a {FORMAT_NAME} manifest")
    if head.get("version") != FORMAT_VERSION:
        raise _Bad(f"unsupported format version {head.get('version')!r}")
    account = _str(head, "account")
    backup_id = _str(head, "backup_id")
    if not ACCOUNT_RE.match(account) or not BACKUP_ID_RE.match(backup_id):
        raise _Bad("invalid account or backup_id")
    kind = _str(head, "type")
    if kind not in ("full", "incremental"):
        raise _Bad("'type' must be full or incremental")
    job = head.get("job")
    if not isinstance(job, dict):
        raise _Bad("'job' must be an object")
    packs = []
    seen: set[str] = set()
    for item in head.get("packs") or []:
        if not isinstance(item, dict):
            raise _Bad("pack entries must be objects")
        name = _str(item, "name")
        if not PACK_RE.match(name) or name in seen:
            raise _Bad(f"invalid or repeated pack name {name!r}")
        seen.add(name)
        packs.append(PackInfo(name, _int(item, "size"), _sha(item.get("sha256"), "pack sha256")))
    databases = []
    for item in head.get("databases") or []:
        if not isinstance(item, dict):
            raise _Bad("database entries must be objects")
        obj = _str(item, "object")
        if not obj.startswith(f"{DB_DIR}/") or "/" in obj[len(DB_DIR) + 1 :] or obj.endswith(("/.", "/..")):
            raise _Bad(f"invalid database object {obj!r}")
        databases.append(
            DatabaseInfo(
                _str(item, "name"),
                obj,
                _int(item, "size"),
                _int(item, "stored"),
                _sha(item.get("sha256"), "database sha256"),
            )
        )
    parts = []
    for item in head.get("parts") or []:
        if not isinstance(item, dict):
            raise _Bad("part entries must be objects")
        parts.append(Part(_str(item, "kind"), _str(item, "name"), _int(item, "size")))
    totals = head.get("totals") or {}
    if not isinstance(totals, dict) or not all(type(v) is int for v in totals.values()):
        raise _Bad("'totals' must map names to integers")
    owner, users, groups = _decode_owners(head)
    return Manifest(
        owner=owner,
        users=users,
        groups=groups,
        account=account,
        backup_id=backup_id,
        generation=_int(head, "generation", minimum=1),
        type=kind,
        job_uuid=str(job.get("uuid", "")),
        job_name=str(job.get("name", "")),
        created=_parse_created(head.get("created")),
        hostname=str(head.get("hostname", "")),
        packs=packs,
        databases=databases,
        parts=parts,
        totals=dict(totals),
        chunk_size=int(head.get("chunk_size") or 0),
    )


def _owner_id(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_ID:
        raise _Bad(f"{what} must be an integer from 0 to {MAX_ID}")
    return value


def _names(value: object, what: str) -> dict[int, str]:
    """A uid -> name (or gid -> name) map of the header; names are only ever looked up."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Bad(f"{what!r} must map ids to names")
    names: dict[int, str] = {}
    for key, name in value.items():
        if not isinstance(key, str) or not key.isdigit() or not isinstance(name, str):
            raise _Bad(f"{what!r} must map decimal ids to names")
        if not valid_owner_name(name):
            raise _Bad(f"{what!r} holds an invalid name {name[:40]!r}")
        names[_owner_id(int(key), f"an id of {what!r}")] = name
    return names


def _decode_owners(head: dict[str, Any]) -> tuple[tuple[int, int] | None, dict[int, str], dict[int, str]]:
    owner = head.get("owner")
    if owner is None:
        return None, {}, {}
    if not isinstance(owner, dict):
        raise _Bad("'owner' must be an object with uid and gid")
    ids = (_owner_id(owner.get("uid"), "the owner's uid"), _owner_id(owner.get("gid"), "the owner's gid"))
    return ids, _names(head.get("users"), "users"), _names(head.get("groups"), "groups")


def _decode_entry(obj: dict[str, Any], packs: dict[str, PackInfo]) -> Entry:
    path = _raw_path(obj, "p")
    if path is None:
        raise _Bad("entry without a path")
    kind = obj.get("t")
    if kind not in ("f", "d", "l"):
        raise _Bad(f"unknown entry type {kind!r}")
    entry = Entry(path=path, type=kind, mode=_int(obj, "m"), mtime_ns=_int(obj, "mt", minimum=-(2**63)))
    if entry.mode > 0o7777:
        raise _Bad("mode has bits beyond 0o7777")
    if "u" in obj:
        entry.uid = _owner_id(obj["u"], "'u'")
    if "g" in obj:
        entry.gid = _owner_id(obj["g"], "'g'")
    if kind == "l":
        entry.link = _raw_path(obj, "l")
        if not entry.link:
            raise _Bad("symlink without a target")
    elif kind == "f":
        entry.size = _int(obj, "s")
        entry.sha256 = _sha(obj.get("h"), "file sha256")
        chunks = obj.get("k")
        if not isinstance(chunks, list):
            raise _Bad("'k' must be a list")
        refs = []
        total = 0
        for ref in chunks:
            if not isinstance(ref, list) or len(ref) != 5:
                raise _Bad("a chunk reference must be [pack, offset, stored, codec, length]")
            name, offset, stored, codec, length = ref
            pack = packs.get(name) if isinstance(name, str) else None
            if pack is None:
                raise _Bad(f"chunk in a pack the header does not list: {name!r}")
            if not all(type(v) is int and v >= 0 for v in (offset, stored, length)):
                raise _Bad("chunk offset, stored and length must be integers >= 0")
            if offset + stored > pack.size:
                raise _Bad(f"chunk beyond the end of {name}")
            if (
                codec not in ("zstd", "raw")
                or length > MAX_CHUNK_RAW
                or (codec == "raw" and stored != length)
            ):
                raise _Bad("invalid chunk codec or length")
            refs.append(ChunkRef(name, offset, stored, codec, length))
            total += length
        if total != entry.size:
            raise _Bad("chunk lengths do not add up to the file size")
        entry.chunks = tuple(refs)
    return entry


_MIN_MTIME = -(2**63)
_HEX = "0123456789abcdef"


class _NotPlain(Exception):
    """An entry the fast decoder does not take: the strict decoder decides (and words the error)."""


def _json_lines(body: bytes, count: int) -> list[Any] | None:
    """The values of `body`'s `count` lines, when each line is exactly one JSON value (no
    whitespace around it); None otherwise. As json.loads of each line, in one pass of json's C
    scanner. A newline cannot occur inside a JSON string, so a value that ends right before a
    newline and started right after one spans whole lines; `count` values for `count` lines
    means each spans one."""
    text = body.decode("utf-8", "surrogatepass")  # as json.loads decodes bytes
    values: list[Any] = []
    append = values.append
    scan = _scan_once
    index, end_of_text = 0, len(text)
    try:
        while index < end_of_text:
            value, end = scan(text, index)
            if text[end] != "\n":
                return None
            append(value)
            index = end + 1
    except (StopIteration, ValueError, IndexError):
        return None
    return values if len(values) == count else None


_scan_once: Any = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed


def _decode_entries_fast(body: bytes, count: int, packs: dict[str, PackInfo]) -> list[Entry] | None:
    """The entries of `body` (the lines after the header), or None when any line is not plain.

    Takes exactly what _decode_entry takes, with the same result, in a fraction of its time:
    files and folders with a UTF-8 path are checked inline and their digests checked for hex
    digits all at once. Anything else (a base64 path, a link, a missing or ill-typed field)
    goes to _decode_entry, and a line that is not exactly one JSON object returns None, so
    that the caller decodes line by line and reports the line at fault.
    """
    try:
        rows = _json_lines(body, count)
    except UnicodeDecodeError:
        return None
    if rows is None:
        return None
    entries: list[Entry] = []
    append = entries.append
    digests: list[str] = []
    new_entry, new_ref = Entry, ChunkRef
    try:
        for obj in rows:
            if type(obj) is not dict:
                return None
            path, kind, mode, mtime = obj.get("p"), obj.get("t"), obj.get("m"), obj.get("mt")
            # A plain file has 7 keys, a plain folder 4; more (an owner "u"/"g") or fewer: strict.
            if (
                type(path) is not str
                or len(obj) != (7 if kind == "f" else 4)
                or type(mode) is not int
                or type(mtime) is not int
                or not 0 <= mode <= 0o7777
                or mtime < _MIN_MTIME
            ):
                append(_decode_entry(obj, packs))
            elif kind == "f":
                size, sha, chunks = obj.get("s"), obj.get("h"), obj.get("k")
                if type(size) is not int or size < 0 or type(sha) is not str or len(sha) != 64:
                    raise _NotPlain
                if type(chunks) is not list:
                    raise _NotPlain
                refs = []
                total = 0
                for ref in chunks:
                    if type(ref) is not list or len(ref) != 5:
                        raise _NotPlain
                    name, offset, stored, codec, length = ref
                    pack = packs[name]  # KeyError, or TypeError when not hashable
                    if (
                        type(offset) is not int
                        or type(stored) is not int
                        or type(length) is not int
                        or offset < 0
                        or stored < 0
                        or length < 0
                        or offset + stored > pack.size
                        or length > MAX_CHUNK_RAW
                        or not (codec == "zstd" or (codec == "raw" and stored == length))
                    ):
                        raise _NotPlain
                    refs.append(new_ref(pack.name, offset, stored, codec, length))
                    total += length
                if total != size:
                    raise _NotPlain
                digests.append(sha)
                append(
                    new_entry(
                        path.encode("utf-8", "surrogatepass"), "f", mode, mtime, size, sha, None, tuple(refs)
                    )
                )
            elif kind == "d":
                append(new_entry(path.encode("utf-8", "surrogatepass"), "d", mode, mtime))
            else:
                append(_decode_entry(obj, packs))
    except (_NotPlain, _Bad, KeyError, TypeError, ValueError):
        return None
    # Every digest is 64 characters; together they must be hex digits only.
    if "".join(digests).strip(_HEX):
        return None
    return entries


def decode_manifest(
    data: bytes,
    *,
    account: str | None = None,
    backup_id: str | None = None,
    generation: int | None = None,
    keep_entries: bool = True,
) -> Manifest:
    """Decode and validate a manifest object; raises ManifestCorrupt.

    The given account / backup_id / generation must match the header (a manifest copied into
    another folder is refused: a backup must never be restored into another account).
    """
    try:
        text = zstandard.ZstdDecompressor().decompress(data, max_output_size=MAX_MANIFEST_BYTES)
    except zstandard.ZstdError as exc:
        raise ManifestCorrupt(f"the manifest does not decompress ({exc}): incomplete or damaged") from exc
    if not text.endswith(b"\n"):
        raise ManifestCorrupt("the manifest does not end with a newline: incomplete")
    head_end = text.index(b"\n")
    body = text[head_end + 1 :]
    count = body.count(b"\n")
    try:
        head = json.loads(text[:head_end])
        if not isinstance(head, dict):
            raise _Bad("the header is not an object")
        manifest = _decode_header(head)
        if account is not None and manifest.account != account:
            raise _Bad(f"it belongs to account {manifest.account!r}, not {account!r}")
        if backup_id is not None and manifest.backup_id != backup_id:
            raise _Bad(f"it belongs to backup {manifest.backup_id!r}, not {backup_id!r}")
        if generation is not None and manifest.generation != generation:
            raise _Bad(f"its generation is {manifest.generation}, its name says {generation}")
        if head.get("entries") != count:
            raise _Bad("the entry count does not match the header")
        packs = {pack.name: pack for pack in manifest.packs}
        with no_gc():
            entries = _decode_entries_fast(body, count, packs)
            if entries is None:
                entries = _decode_lines(body, packs)
        if keep_entries:
            manifest.entries = entries
    except (_Bad, ValueError, IndexError) as exc:
        raise ManifestCorrupt(f"invalid manifest: {exc}") from exc
    manifest.stored_size = len(data)
    manifest.remember_encoded(data)
    return manifest


def _decode_lines(body: bytes, packs: dict[str, PackInfo]) -> list[Entry]:
    """The strict decoder, line by line: raises _Bad naming the first line at fault."""
    lines = body.split(b"\n")
    lines.pop()  # after the last newline
    entries = []
    for number, line in enumerate(lines, start=2):
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise _Bad("not an object")
            entries.append(_decode_entry(obj, packs))
        except (_Bad, ValueError) as exc:
            raise _Bad(f"line {number}: {exc}") from exc
    return entries
