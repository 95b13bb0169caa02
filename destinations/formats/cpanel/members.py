"""Reading the chosen members of a cPanel account archive back, with their data, for a restore
or a download (``iter_members``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .tarsafe import (
    DEFAULT_LIMITS,
    FATAL_FLAGS,
    ArchiveError,
    ByteStream,
    Limits,
    Member,
    MemberData,
    Problem,
    open_tar,
)


def iter_members(
    stream: ByteStream,
    select: Callable[[str], bool],
    *,
    top: str,
    limits: Limits = DEFAULT_LIMITS,
    problems: list[Problem] | None = None,
) -> Iterator[tuple[Member, MemberData]]:
    """Yield (member, data) for every safe member under ``top`` that ``select(relpath)`` accepts.

    ``top`` is ``ArchiveIndex.top``. Names in the yielded members are relative to it, with the
    contents of ``homedir.tar`` presented as ``homedir/...`` (so ``classify`` and
    ``part_selector`` work on both layouts); a hard link's target is relative too. ``data`` is
    valid until the next member is asked for. Refused members are skipped and described in
    ``problems``; damage or a hard limit raises ``ArchiveError`` where it is met.
    """
    reader = open_tar(stream, limits=limits)
    state = reader.state
    nested_done = False
    cut = len(top)

    def relative(member: Member) -> Member | None:
        name = member.name
        if not name.startswith(top) or len(name) == cut:
            return None
        target = member.target
        if member.type == "hardlink":
            if not target.startswith(top):
                return None
            target = target[cut:]
        return member._replace(name=name[cut:], target=target)

    try:
        for member in reader:
            rel = relative(member)
            if rel is None:
                continue
            if rel.type == "file" and rel.name == "homedir.tar":
                if nested_done:
                    state.problem("nested_archive", member.name, "a second homedir.tar is not read")
                    continue
                nested_done = True
                nested = reader.open_nested(prefix=top + "homedir/", label=member.name)
                for inner in nested:
                    inner_rel = relative(inner)
                    if inner_rel is not None and select(inner_rel.name):
                        yield inner_rel, nested.data()
                if not nested.complete and not state.stopped:
                    state.problem("truncated", member.name, "homedir.tar ends without its end marker")
                continue
            if select(rel.name):
                yield rel, reader.data()
        reader.finish()
    finally:
        if problems is not None:
            problems.extend(state.problems)
    if state.fatal:
        fatal = sorted(state.flags & FATAL_FLAGS)
        last = state.problems[-1].reason if state.problems else ""
        raise ArchiveError(f"the archive could not be read to the end: {last}", fatal[0])
