"""What a restore or download did (`Outcome`, turned into the queue item's result), or why it
must not run at all (`RestoreRefused`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backupsite.errors import Error
from destinations import names
from destinations.localfs import UnsafePath

MAX_SKIPPED = 1000  # kept verbatim in a result; the rest are counted


class RestoreRefused(Error):
    """The restore must not run at all (wrong account, not restorable, no home folder, ...)."""


@dataclass
class Outcome:
    """What a run did, turned into the queue item's result."""

    target: str = ""
    folder: str = ""
    restored: int = 0
    failed: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    skipped_count: int = 0
    databases: list[dict[str, Any]] = field(default_factory=list)
    db_users: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def skip(self, path: str, reason: str, *, failure: bool = False) -> None:
        self.skipped_count += 1
        if failure:
            self.failed += 1
        if len(self.skipped) < MAX_SKIPPED:
            # The result is JSON: a name that is not UTF-8 is kept in its display form.
            self.skipped.append({"path": names.display(path), "reason": names.display(reason)})

    def result(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "target": self.target,
            "restored": self.restored,
            "skipped": self.skipped,
        }
        if self.folder:
            result["folder"] = self.folder
        if self.skipped_count > len(self.skipped):
            result["skipped_total"] = self.skipped_count
        if self.databases:
            result["databases"] = self.databases
        if self.db_users:
            result["db_users"] = self.db_users
        if self.notes:
            result["notes"] = self.notes
        if self.failed:
            if not self.restored:
                raise RuntimeError(
                    "Nothing could be restored: "
                    + "; ".join(f"{s['path']}: {s['reason']}" for s in self.skipped[:5])
                )
            result["status"] = "partial"
            result["error"] = f"{self.failed} items could not be restored (see skipped)"
        return result


def write_error(path: str, exc: BaseException) -> str:
    if isinstance(exc, FileExistsError):
        return "exists (not overwritten)"
    if isinstance(exc, UnsafePath):
        return f"refused: {exc}"
    return f"cannot write: {exc}"
