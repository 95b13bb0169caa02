"""The native manifest: its dataclasses (the model), as the engine builds and reads it.

A manifest is one zstd frame (with content checksum) holding JSON Lines: a header object,
then one object per entry; manifest_codec encodes and strictly decodes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from .common import (
    FORMAT_NAME,
    FORMAT_VERSION,
    PACKS_DIR,
    display_path,
    manifest_name,
)

EntryType = Literal["f", "d", "l"]
Codec = Literal["zstd", "raw"]


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """`length` raw bytes of a file, stored as `stored` bytes at `offset` of `pack`."""

    pack: str
    offset: int
    stored: int
    codec: Codec
    length: int


@dataclass(slots=True)
class Entry:
    path: bytes  # relative, '/'-separated, raw bytes as on disk
    type: EntryType
    mode: int  # permission bits (S_IMODE)
    mtime_ns: int
    size: int = 0
    sha256: str = ""
    link: bytes | None = None
    chunks: tuple[ChunkRef, ...] = ()
    # Owner and group as numbers on the backed-up system; None: the account's (the owner of
    # the home folder, Manifest.owner), which is what nearly every entry has and what
    # manifests written before owners were recorded mean.
    uid: int | None = None
    gid: int | None = None

    @property
    def display(self) -> str:
        return display_path(self.path)

    def same_metadata(self, other: Entry) -> bool:
        """The incremental rule: unchanged when type, size, mtime, mode and link target match
        (the owner is compared apart, see same_owner: a new owner alone keeps the content)."""
        return (
            self.type == other.type
            and self.size == other.size
            and self.mtime_ns == other.mtime_ns
            and self.mode == other.mode
            and self.link == other.link
        )

    def same_owner(self, other: Entry) -> bool:
        return self.uid == other.uid and self.gid == other.gid


@dataclass(frozen=True, slots=True)
class PackInfo:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class DatabaseInfo:
    name: str
    object: str  # path of the dump, relative to the backup folder: db/<name>-<gen>.sql.zst
    size: int  # bytes of SQL
    stored: int  # bytes of the zstd object
    sha256: str  # of the SQL (what a restore gets back)


@dataclass(frozen=True, slots=True)
class Part:
    kind: str  # homedir | databases | email_accounts
    name: str
    size: int


@dataclass
class Manifest:
    account: str
    backup_id: str
    generation: int
    type: str  # full | incremental
    job_uuid: str
    job_name: str
    created: datetime
    hostname: str
    packs: list[PackInfo] = field(default_factory=list)
    databases: list[DatabaseInfo] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)
    chunk_size: int = 0
    stored_size: int = 0  # bytes of the manifest object itself, when read back
    # (uid, gid) of the home folder when it was backed up: what an entry's None owner means.
    # None in manifests written before owners were recorded.
    owner: tuple[int, int] | None = None
    users: dict[int, str] = field(default_factory=dict)  # uid -> user name, as on the backed-up system
    groups: dict[int, str] = field(default_factory=dict)  # gid -> group name

    @property
    def name(self) -> str:
        return manifest_name(self.generation)

    @property
    def path(self) -> str:
        return f"{self.account}/{self.backup_id}"

    def referenced_objects(self) -> set[str]:
        """Every object this generation needs, relative to the backup folder."""
        objects = {self.name}
        objects.update(f"{PACKS_DIR}/{pack.name}" for pack in self.packs)
        objects.update(db.object for db in self.databases)
        return objects

    def entry_map(self) -> dict[bytes, Entry]:
        return {entry.path: entry for entry in self.entries}

    # The exact object bytes of a manifest that was committed or read are kept beside its
    # fields (not as a field: a copy made with dataclasses.replace must not inherit them).
    # Caching a manifest locally then writes them instead of encoding it again.

    def remember_encoded(self, data: bytes) -> None:
        """`data` is this manifest's object, as committed or as read (entries included)."""
        self.__dict__["_encoded"] = (data, self.generation, tuple(self.entries))

    def encoded(self) -> bytes | None:
        """The object bytes given to remember_encoded, unless generation or entries changed since."""
        found = self.__dict__.get("_encoded")
        if found is None:
            return None
        data, generation, entries = found
        if (
            generation != self.generation
            or len(data) != self.stored_size
            or not _same_entries(entries, self.entries)
        ):
            return None
        return data

    def header(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "account": self.account,
            "backup_id": self.backup_id,
            "generation": self.generation,
            "type": self.type,
            "job": {"uuid": self.job_uuid, "name": self.job_name},
            "created": self.created.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "hostname": self.hostname,
            "chunk_size": self.chunk_size,
            "entries": len(self.entries),
            "packs": [{"name": p.name, "size": p.size, "sha256": p.sha256} for p in self.packs],
            "databases": [
                {"name": d.name, "object": d.object, "size": d.size, "stored": d.stored, "sha256": d.sha256}
                for d in self.databases
            ],
            "parts": [{"kind": p.kind, "name": p.name, "size": p.size} for p in self.parts],
            "totals": dict(self.totals),
            **self._owner_header(),
        }

    def _owner_header(self) -> dict[str, Any]:
        if self.owner is None:
            return {}
        return {
            "owner": {"uid": self.owner[0], "gid": self.owner[1]},
            "users": {str(uid): name for uid, name in sorted(self.users.items())},
            "groups": {str(gid): name for gid, name in sorted(self.groups.items())},
        }


MAX_ID = 2**32 - 2  # (uid_t)-1 means "no change" to chown
MAX_OWNER_NAME = 255


def valid_owner_name(name: str) -> bool:
    """What a user or group name in a manifest may be (as /etc/passwd and /etc/group hold them)."""
    return 0 < len(name) <= MAX_OWNER_NAME and name.isprintable() and ":" not in name


def _same_entries(kept: tuple[Entry, ...], entries: list[Entry]) -> bool:
    return len(kept) == len(entries) and all(a is b for a, b in zip(kept, entries, strict=True))
