"""Validate: check at once, step by step, that backups can go to a destination."""

from dataclasses import dataclass, field
from typing import Any

from .ftp import FtpSettings


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    hint: str = ""
    warning: bool = False


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    fingerprint: str | None = None
    pin_suggested: bool = False

    @property
    def ok(self) -> bool:
        return all(check.ok or check.warning for check in self.checks) and bool(self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [
                {"name": c.name, "ok": c.ok, "detail": c.detail, "hint": c.hint, "warning": c.warning}
                for c in self.checks
            ],
            "fingerprint": self.fingerprint,
        }


def run(settings: FtpSettings) -> Report:
    raise NotImplementedError
