"""Batch types used by the tests; workers load them through BATCHQ_TYPES."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from batchq.types import BatchSummary, ItemContext, batch_type, registry


def _append_marker(summary: BatchSummary) -> dict[str, Any]:
    # A file line per run proves "exactly once" across processes.
    with Path(summary.params["marker"]).open("a") as marker:
        marker.write(f"{summary.batch_id} {os.getpid()}\n")
    return {"processed": summary.processed_items, "failed": summary.failed_items}


def _raise_report_failure(summary: BatchSummary) -> None:
    raise RuntimeError("the report could not be written")


@batch_type("test-post-ok", post_batch=_append_marker)
def post_ok(payload: Any, ctx: ItemContext) -> Any:
    return registry.get("echo").handler(payload, ctx)


@batch_type("test-post-raise", post_batch=_raise_report_failure)
def post_raise(payload: Any, ctx: ItemContext) -> Any:
    return registry.get("echo").handler(payload, ctx)


@batch_type("test-poison", failure_threshold=None)
def poison(payload: Any, ctx: ItemContext) -> Any:
    """An item with {"exit": true} kills the process running it, every time."""
    if isinstance(payload, dict) and payload.get("exit"):
        os._exit(13)
    return registry.get("echo").handler(payload, ctx)
