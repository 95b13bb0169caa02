"""The error base of Backupsite, without Django: every failure the panel explains to a person
is an `Error` with a `message` (what went wrong) and a `hint` (what to do about it).

Callers catch `Error` (or one family of it) and show `describe(exc)`, instead of listing
types and guessing at attributes. `Aborted` ends work an admin asked to stop.
"""

from __future__ import annotations


class Error(Exception):
    """A failure with a message for people and, where one helps, a hint."""

    def __init__(self, message: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class Aborted(Error):
    """An admin asked to stop this work."""


def describe(exc: BaseException) -> str:
    """One line for a log or a queue item: the message, and the hint in brackets."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__  # TODO(merge): Error only
    hint = getattr(exc, "hint", "")
    return f"{message} ({hint})" if hint else message
