"""The error base of Backupsite, without Django: every failure the panel explains to a person
is an `Error` with a `message` (what went wrong) and a `hint` (what to do about it).

Callers catch `Error` (or one family of it) and show `describe(exc)`, or `message_of` and
`hint_of` separately, instead of listing types and guessing at attributes. `Aborted` ends work
an admin asked to stop. Other exceptions (a bug, an OSError) are shown as their text.
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


def message_of(exc: BaseException) -> str:
    """What went wrong, in one line."""
    text = exc.message if isinstance(exc, Error) else str(exc)
    return text or type(exc).__name__


def hint_of(exc: BaseException) -> str:
    """What to do about it ("" when there is no advice)."""
    return exc.hint if isinstance(exc, Error) else ""


def describe(exc: BaseException) -> str:
    """One line for a log or a queue item: the message, and the hint in brackets."""
    message, hint = message_of(exc), hint_of(exc)
    return f"{message} ({hint})" if hint else message
