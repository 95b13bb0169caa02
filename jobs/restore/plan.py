"""What a restore or download request means: the checked request (`RestoreRequest`) and its
plan in engine terms (`Plan`: home paths, mailboxes, databases, users, what is skipped and why).

Configuration parts (cron, DNS zones, SSL, FTP accounts, domains, forwarders and filters,
account settings) are not applied: skipped with ``CONFIG_REASON``; downloads include them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from destinations import names
from jobs.models import Snapshot

from ..models import Account

CONFIG_KINDS = frozenset(
    {"cron", "dns_zones", "ssl", "ftp_accounts", "domains", "forwarders_filters", "account_settings"}
)
CONFIG_REASON = "apply it in the hosting control panel; download it instead"
MAIL_FILES = ("passwd", "shadow", "quota")  # etc/<domain>/…: shared by a domain's mailboxes
MAX_MAIL_FILE = 16 * 1024 * 1024


@dataclass(frozen=True)
class RestoreRequest:
    """What to restore (or download). Empty `parts` and `paths`: everything (a request says so
    with ``whole_account``; validate_request never lets an empty selection mean it by accident)."""

    parts: tuple[tuple[str, str], ...] = ()
    paths: tuple[str, ...] = ()  # names as destinations.names holds them (bytes that are not UTF-8 too)
    target: str = "new_folder"  # "" for a download
    database_name: str = ""
    # The requester's yes to replacing live data: how it was asked for, not what is restored.
    confirm_overwrite: bool = field(default=False, compare=False)

    @property
    def everything(self) -> bool:
        return not self.parts and not self.paths

    def to_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "parts": [{"kind": kind, "name": name} for kind, name in self.parts],
            "paths": [path for path in self.paths if names.is_text(path)],
        }
        raw = [names.to_b64(path) for path in self.paths if not names.is_text(path)]
        if raw:  # JSON (and the database) take text only: these travel as the request sent them
            params["paths_b64"] = raw
        if self.target:
            params["target"] = self.target
        if self.database_name:
            params["database_name"] = self.database_name
        # Kept so that the worker, which checks the request again, sees the same explicit choices.
        if self.everything:
            params["whole_account"] = True
        if self.confirm_overwrite:
            params["confirm_overwrite"] = True
        return params


@dataclass
class Plan:
    """What a request means for one snapshot, in engine terms."""

    whole_home: bool = False
    paths: list[str] = field(default_factory=list)  # home-relative
    mailboxes: list[str] = field(default_factory=list)  # box@domain (without the whole home)
    databases: list[str] = field(default_factory=list)
    db_users: set[str] | None = field(default_factory=set)  # None: every user
    config: list[tuple[str, str]] = field(default_factory=list)  # config parts (downloads only)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    overwrite: bool = False
    database_name: str = ""
    admin: bool = False  # asked by an admin: files the account's uid cannot read are included

    @property
    def wants_files(self) -> bool:
        return self.whole_home or bool(self.paths) or bool(self.mailboxes)

    def mail_domains(self) -> dict[str, set[str]]:
        domains: dict[str, set[str]] = {}
        for box in self.mailboxes:
            name, _, domain = box.rpartition("@")
            domains.setdefault(domain, set()).add(name)
        return domains

    def covers_home_path(self, rel: str) -> bool:
        """Whether home path `rel` is restored whole (the home, or a chosen path holds it)."""
        return self.whole_home or any(rel == p or rel.startswith(p + "/") for p in self.paths)


def part_label(kind: str, name: str) -> str:
    return f"{kind}: {name}" if name else kind


def build_plan(snapshot: Snapshot, request: RestoreRequest, *, for_download: bool = False) -> Plan:
    plan = Plan(overwrite=request.target == "overwrite", database_name=request.database_name)
    parts = request.parts
    if request.everything:
        parts = tuple((str(p.get("kind", "")), str(p.get("name", ""))) for p in snapshot.parts)
    plan.paths = list(request.paths)
    db_users: set[str] = set()
    all_users = False
    owners = Account.owners()
    username = snapshot.account.username if snapshot.account is not None else snapshot.account_name
    for kind, name in parts:
        if kind == "homedir":
            plan.whole_home = True
        elif kind == "email_accounts":
            plan.mailboxes.append(name)
        elif kind == "databases":
            if name.startswith("pgsql:"):
                if for_download:
                    plan.config.append((kind, name))
                else:
                    plan.skipped.append(
                        (part_label(kind, name), "PostgreSQL databases are not restored; download it instead")
                    )
                continue
            if not owners.owns_database(username, name):  # whole backups: the account's own only
                plan.skipped.append((part_label(kind, name), owners.why_not_database(username, name)))
                continue
            plan.databases.append(name)
        elif kind == "db_users":
            if request.everything:
                all_users = True
            else:
                db_users.add(name)
        elif kind in CONFIG_KINDS:
            if for_download:
                plan.config.append((kind, name))
            else:
                plan.skipped.append((part_label(kind, name), CONFIG_REASON))
        else:
            plan.skipped.append((part_label(kind, name), "this kind of part cannot be restored"))
    plan.db_users = None if all_users else db_users
    if plan.whole_home:
        plan.paths = []
        plan.mailboxes = []
    return plan
