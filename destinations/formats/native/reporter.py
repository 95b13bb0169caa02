"""Progress of a backup being written: counts for the ProgressSink, abort polling, log lines.

Only the calling thread uses it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .common import BackupAborted, ProgressSink, display_path

MAX_SKIPPED_LOG_LINES = 200


class Reporter:
    def __init__(self, sink: ProgressSink) -> None:
        self.sink = sink
        self.unstored: Callable[[], int] = lambda: 0  # bytes counted but not yet on the server
        self.bytes_done = 0
        self.bytes_total = 0
        self.files_done = 0
        self.files_total = 0
        self.bytes_unchanged = 0  # part of bytes_done kept from the previous backup, not sent
        self.files_unchanged = 0
        self._last_tick = 0.0
        self._last_abort = time.monotonic()
        self.skipped_logged = 0

    def tick(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_tick >= 0.25:
            self._last_tick = now
            self.sink.progress(
                bytes_done=max(0, self.bytes_done - self.unstored()),
                bytes_total=max(self.bytes_total, self.bytes_done),
                files_done=self.files_done,
                files_total=max(self.files_total, self.files_done),
                bytes_unchanged=self.bytes_unchanged,
                files_unchanged=self.files_unchanged,
            )

    def check_abort(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_abort >= 0.5:
            self._last_abort = now
            if self.sink.abort_requested():
                raise BackupAborted("the backup was aborted on request; nothing was committed")

    def log(self, message: str, level: str = "info") -> None:
        self.sink.log(message, level=level)

    def skipped(self, path: bytes, reason: str) -> None:
        self.skipped_logged += 1
        if self.skipped_logged <= MAX_SKIPPED_LOG_LINES:
            self.log(f"skipped {display_path(path)}: {reason}", "warning")
        elif self.skipped_logged == MAX_SKIPPED_LOG_LINES + 1:
            self.log("more files skipped; not listing them all", "warning")
