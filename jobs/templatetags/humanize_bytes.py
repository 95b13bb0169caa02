from typing import Any

from django import template

register = template.Library()


@register.filter(name="bytes")
def human_bytes(value: int | None) -> str:
    """1536 -> '1.5 KiB'."""
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


@register.filter(name="stamp")
def stamp(value: int | None) -> str:
    """Epoch seconds -> '2026-12-04 02:04:13 CET', in the time zone the request activated."""
    from datetime import UTC, datetime

    from backupsite.templatetags.when import absolute

    if not value:
        return ""
    return absolute(datetime.fromtimestamp(int(value), tz=UTC))


# What a queue item's byte counts are, per kind: the bar's text says it.
_BYTES_VERB = {
    "backup": "sent",
    "restore": "restored",
    "download": "packed",
    "reindex": "read",
    "rotation": "removed",
}


@register.filter(name="progress_text")
def progress_text(item: Any) -> str:
    """'1.2 KiB sent, 21.0 MiB unchanged, of 21.0 MiB scanned · 3 of 120 files (117 unchanged)'.

    An incremental run counts what it kept from the previous backup as done; saying
    "21.0 MiB of 21.0 MiB" would hide that only 1.2 KiB went to the destination.
    """
    verb = _BYTES_VERB.get(item.kind, "done")
    parts: list[str] = []
    unchanged = getattr(item, "bytes_unchanged", 0) or 0
    if unchanged:
        sent = max(0, item.bytes_done - unchanged)
        parts.append(
            f"{human_bytes(sent)} {verb}, {human_bytes(unchanged)} unchanged, "
            f"of {human_bytes(item.bytes_total)} scanned"
        )
    elif item.bytes_total:
        parts.append(f"{human_bytes(item.bytes_done)} of {human_bytes(item.bytes_total)} {verb}")
    if item.files_total:
        files = f"{item.files_done} of {item.files_total} files"
        files_unchanged = getattr(item, "files_unchanged", 0) or 0
        if files_unchanged:
            files += f" ({files_unchanged} unchanged)"
        parts.append(files)
    return " · ".join(parts)
