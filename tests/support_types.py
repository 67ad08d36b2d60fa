"""Batch types used by the tests; workers load them through BATCHQ_TYPES."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from batchq import (
    BatchSummary,
    ItemContext,
    ItemRetryPolicy,
    PostBatchResult,
    ResultFile,
    RetryItem,
    SourceChunk,
    batch_type,
)
from batchq.batch_types.builtin import echo


def _append_marker(summary: BatchSummary) -> dict[str, Any]:
    # A file line per run proves "exactly once" across processes.
    with Path(summary.params["marker"]).open("a") as marker:
        marker.write(f"{summary.batch_id} {os.getpid()}\n")
    return {"processed": summary.processed_items, "failed": summary.failed_items}


def _raise_report_failure(summary: BatchSummary) -> None:
    raise RuntimeError("the report could not be written")


@batch_type("test-post-ok", post_batch=_append_marker)
def post_ok(payload: Any, ctx: ItemContext) -> Any:
    return echo(payload, ctx)


@batch_type("test-post-raise", post_batch=_raise_report_failure)
def post_raise(payload: Any, ctx: ItemContext) -> Any:
    return echo(payload, ctx)


@batch_type("test-poison", failure_threshold=None)
def poison(payload: Any, ctx: ItemContext) -> Any:
    """An item with {"exit": true} kills the process running it, every time."""
    if isinstance(payload, dict) and payload.get("exit"):
        os._exit(13)
    return echo(payload, ctx)


def _count_source(params: Mapping[str, Any], cursor: Any, limit: int) -> SourceChunk:
    """Items ``{"n": i}`` keyed ``i`` for i < params["count"]; the cursor is the next i.

    With ``stall_at`` and ``stall_marker``: the first read at cursor ``stall_at``
    writes its pid to the marker file and sleeps, so a test can kill it mid-read.
    """
    start = cursor or 0
    marker = params.get("stall_marker")
    if start == params.get("stall_at") and marker and not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()))
        time.sleep(600)
    end = min(start + limit, params["count"])
    items = [{"key": str(n), "payload": {"n": n}} for n in range(start, end)]
    return SourceChunk(items, end if end < params["count"] else None)


@batch_type("test-count-source", source=_count_source)
def count_source(payload: Any, ctx: ItemContext) -> Any:
    return echo(payload, ctx)


def _failed_keys_report(summary: BatchSummary) -> PostBatchResult:
    """The result counts the items; the result file is a CSV of the failed keys."""
    report = ResultFile.csv(f"failed-{summary.batch_id}.csv", ["key", "error"],
                            summary.item_errors())
    return PostBatchResult(result={"processed": summary.processed_items,
                                   "failed": summary.failed_items}, file=report)


@batch_type("test-failed-keys-report", post_batch=_failed_keys_report, failure_threshold=None)
def failed_keys_report(payload: Any, ctx: ItemContext) -> Any:
    return echo(payload, ctx)


@batch_type("test-cannot-cancel", can_cancel=False)
def cannot_cancel(payload: Any, ctx: ItemContext) -> Any:
    return echo(payload, ctx)


@batch_type("test-progress")
def progress(payload: Any, ctx: ItemContext) -> Any:
    """Echo, telling how far it got: "Escalated activity <n>"."""
    ctx.set_progress(f"Escalated activity {payload['n']}")
    return echo(payload, ctx)


def _stall_once(marker: str) -> None:
    """The first process to get here writes its pid to ``marker`` and hangs (to be killed)."""
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        time.sleep(600)


@batch_type("test-flaky", failure_threshold=None,
            retry=ItemRetryPolicy(max_attempts=3, backoff="fixed", delay_seconds=0.5,
                                  jitter=False, transient=(ConnectionError,)))
def flaky(payload: Any, ctx: ItemContext) -> Any:
    """Fails transiently on its first ``fail_times`` attempts (RetryItem, or ConnectionError
    with ``"connection": true``); ``stall_on_attempt`` with ``marker`` hangs that attempt once."""
    if payload.get("stall_on_attempt") == ctx.attempt:
        _stall_once(payload["marker"])
    if ctx.attempt <= payload.get("fail_times", 0):
        if payload.get("connection"):
            raise ConnectionError(f"refused on attempt {ctx.attempt}")
        raise RetryItem(f"busy on attempt {ctx.attempt}", after=0.2)
    return echo(payload, ctx)


@batch_type("test-hang", item_deadline_seconds=1.0)
def hang(payload: Any, ctx: ItemContext) -> Any:
    """``{"hang": "loop"}`` loops in Python, ``{"hang": "sleep"}`` blocks in C (a sleep),
    ``{"hang": "ignore"}`` swallows even the deadline's alarm; anything else is echoed."""
    how = payload.get("hang") if isinstance(payload, Mapping) else None
    if how == "loop":
        while True:
            pass
    if how == "sleep":
        time.sleep(10**6)
    while how == "ignore":  # a handler that ignores its deadline, on purpose
        with contextlib.suppress(BaseException):
            time.sleep(10**6)
    return echo(payload, ctx)
