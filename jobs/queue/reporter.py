"""Running an item: a `Reporter` writes its progress, log and heartbeat (and notices an abort
request); `run_item` claims the item, runs the work's body and records the outcome."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.utils import timezone

from backupsite.errors import Aborted, describe
from destinations import names
from destinations.formats import native
from destinations.ftp.leases import holding_for

from .items import HEARTBEAT_SECONDS, LOG_LIMIT, Status, claim, finish, tell_finished
from .models import QueueItem

logger = logging.getLogger(__name__)

_FLUSH_SECONDS = 0.5


class Reporter:
    """Progress, log lines, heartbeat and abort checks for one running item.

    Writes are throttled (at most every half second) except log lines marked important and the
    final flush. A background thread keeps the heartbeat while the task waits on the network.
    """

    def __init__(self, item: QueueItem) -> None:
        self.item = item
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._dirty: set[str] = set()
        self._new_lines: list[str] = []
        self._last_flush = 0.0
        self._abort = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{item.pk}", daemon=True)
        self._thread.start()

    # -- progress --------------------------------------------------------------------------
    def update(
        self,
        *,
        bytes_done: int | None = None,
        bytes_total: int | None = None,
        files_done: int | None = None,
        files_total: int | None = None,
        progress: int | None = None,
        bytes_unchanged: int | None = None,
        files_unchanged: int | None = None,
    ) -> None:
        with self._lock:
            for name, value in (
                ("bytes_done", bytes_done),
                ("bytes_total", bytes_total),
                ("files_done", files_done),
                ("files_total", files_total),
                ("bytes_unchanged", bytes_unchanged),
                ("files_unchanged", files_unchanged),
            ):
                if value is not None and getattr(self.item, name) != value:
                    setattr(self.item, name, value)
                    self._dirty.add(name)
            if progress is None:
                progress = self._derived_progress()
            progress = max(0, min(99, progress))
            if progress != self.item.progress:
                self.item.progress = progress
                self._dirty.add("progress")
        self._maybe_flush()

    def _derived_progress(self) -> int:
        item = self.item
        if item.bytes_total:
            return int(100 * item.bytes_done / item.bytes_total)
        if item.files_total:
            return int(100 * item.files_done / item.files_total)
        return item.progress

    def log(self, line: str) -> None:
        line = names.display(line)  # the log is JSON: file names that are not UTF-8 as \xNN
        stamped = f"{timezone.now():%H:%M:%S} {line}"
        logger.info("queue item %s: %s", self.item.pk, line)
        with self._lock:
            self._new_lines.append(stamped)
        self._maybe_flush()

    def abort_requested(self) -> bool:
        return self._abort

    def check_abort(self) -> None:
        if self._abort:
            raise Aborted("Aborted by an admin.")

    # -- persistence ---------------------------------------------------------------------
    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= _FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        with self._flush_lock:  # the task's thread and the heartbeat thread both flush
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            fields = {name: getattr(self.item, name) for name in self._dirty}
            lines, self._new_lines = self._new_lines, []
            self._dirty.clear()
            self._last_flush = time.monotonic()
        if lines:
            log = list(self.item.log) + lines
            if len(log) > LOG_LIMIT:
                log = [*log[:50], "… (lines left out) …", *log[-(LOG_LIMIT - 51) :]]
            self.item.log = log
            fields["log"] = log
        fields["heartbeat"] = timezone.now()
        QueueItem.objects.filter(pk=self.item.pk, status=Status.RUNNING).update(**fields)
        self._abort = QueueItem.objects.filter(pk=self.item.pk, abort_requested=True).exists()

    def _beat(self) -> None:
        """Keep the heartbeat while the task waits on the network, and write progress that
        arrived in a burst and was held back by the throttle."""
        last_beat = time.monotonic()
        try:
            while not self._stop.wait(_FLUSH_SECONDS):
                try:
                    if self._dirty or self._new_lines or time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                        self.flush()
                        last_beat = time.monotonic()
                except Exception:  # the database may be briefly locked; the next beat retries
                    logger.exception("heartbeat of queue item %s failed", self.item.pk)
        finally:
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=HEARTBEAT_SECONDS + 5)
        self.flush()


def run_item(item_id: int, kind: str, body: Callable[[QueueItem, Reporter], dict[str, Any] | None]) -> None:
    """Claim item `item_id` and run `body` on it, recording the outcome.

    `body` returns the result object; it may set `result["status"]` to "partial". Exceptions
    become a failed item with the error message; Aborted becomes aborted.
    """
    item = claim(item_id)
    if item is None:
        logger.info("queue item %s is not pending any more; nothing to do", item_id)
        return
    if item.kind != kind:
        finish(item, Status.FAILED, error=f"queue item is a {item.kind}, not a {kind}")
        return
    reporter = Reporter(item)
    status, error, result = Status.FAILED, "", None
    failure: BaseException | None = None
    try:
        # Leases say which work holds them; a long wait for one shows in the item's log.
        with holding_for(lease_holder(item), on_wait=wait_notice(item, reporter)):
            result = body(item, reporter) or {}
        status = Status.PARTIAL if result.pop("status", None) == "partial" else Status.COMPLETED
        error = result.pop("error", "") if status == Status.PARTIAL else ""
    except Aborted as exc:
        status, error = Status.ABORTED, str(exc)
        reporter.log("Aborted.")
    except Exception as exc:
        failure = exc
        error = names.display(describe(exc))
        reporter.log(f"Failed: {error}")
        logger.error("queue item %s failed:\n%s", item_id, traceback.format_exc())
    finally:
        reporter.close()
        finish(item, status, error=error, result=result)
    tell_finished(item, failure)


CLIENT_WAIT_NOTICE = "Waiting for a connection: other work is using all connections to the backup server."


def wait_notice(item: QueueItem, reporter: Reporter) -> Callable[[str], None]:
    """Where a long wait for a connection is told: the item's log. A client reads only that
    it waits: the holders are other work, often other clients' ("Restore #7 (restore bob ...)")."""
    requester = item.requested_by
    if requester is not None and not requester.is_staff:
        return lambda _notice: reporter.log(CLIENT_WAIT_NOTICE)
    return reporter.log


def lease_holder(item: QueueItem) -> str:
    """How a connection lease names the work that holds it: "Backup #12 (nightly)"."""
    name = f"{item.get_kind_display()} #{item.pk}"
    return f"{name} ({item.title[:80]})" if item.title else name


class EngineProgress(native.ProgressSink):
    """Adapts a Reporter to the engines' ProgressSink. Counts continue across stages (the
    accounts of a backup run, the steps of a restore), so one bar covers the whole item:
    `base` is what the stages before this one did (their totals are what they did)."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.base = native.ProgressCounts()

    def report(self, counts: native.ProgressCounts) -> None:
        self.reporter.update(**(self.base + counts).as_fields())

    def log(self, message: str, *, level: str = "info") -> None:
        self.reporter.log(message if level == "info" else f"{level}: {message}")

    def abort_requested(self) -> bool:
        return self.reporter.abort_requested()

    def stage_done(self) -> None:
        item = self.reporter.item
        self.base = native.ProgressCounts(
            bytes_done=item.bytes_done,
            bytes_total=item.bytes_done,
            files_done=item.files_done,
            files_total=item.files_done,
            bytes_unchanged=item.bytes_unchanged,
            files_unchanged=item.files_unchanged,
        )
