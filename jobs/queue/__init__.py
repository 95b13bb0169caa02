"""The queue: one table (QueueItem) is the truth about background work.

A layer of its own under the work packages (backup, reindex, verify, restore, discovery): it
imports none of them. Work is created with `enqueue` and dispatched by Celery task name once
the transaction commits; tasks claim an item with a conditional UPDATE, may hold a run lock
(`take_lock`, a unique column of the item, so two runs of one job or two reindexes of one
destination never overlap), report progress through a `Reporter` (which also keeps a
heartbeat), and finish with a status. A worker that dies stops the heartbeat; `reap_stale`
then marks its item failed so nothing shows "running" forever. Whoever wants to react to
finished work registers with `on_finished`.

This module is the queue's public API.
"""

from backupsite.errors import Aborted

from .items import (
    HEARTBEAT_SECONDS,
    STALE_AFTER,
    TASK_NAMES,
    claim,
    dispatch_item,
    enqueue,
    enqueue_once,
    finish,
    on_finished,
    reap_stale,
    redispatch_lost,
    request_abort,
    take_lock,
    worker_name,
)
from .models import QueueItem
from .reporter import CLIENT_WAIT_NOTICE, EngineProgress, Reporter, lease_holder, run_item, wait_notice

__all__ = [
    "CLIENT_WAIT_NOTICE",
    "HEARTBEAT_SECONDS",
    "STALE_AFTER",
    "TASK_NAMES",
    "Aborted",
    "EngineProgress",
    "QueueItem",
    "Reporter",
    "claim",
    "dispatch_item",
    "enqueue",
    "enqueue_once",
    "finish",
    "lease_holder",
    "on_finished",
    "reap_stale",
    "redispatch_lost",
    "request_abort",
    "run_item",
    "take_lock",
    "wait_notice",
    "worker_name",
]
