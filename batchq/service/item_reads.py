"""A batch's items and item errors, in input order, a window at a time.

Totals come from the batch row's counters (exact by docs/design.md's invariant 1), so no list
counts its rows; see ``batchq.storage.items`` for how a status filter reads.
"""

from __future__ import annotations

from typing import Any

from batchq.domain.item_outcomes import ItemStatus, count_items
from batchq.domain.lists import Window
from batchq.runtime import Runtime
from batchq.storage.common import Row


def list_items(rt: Runtime, batch: Row, status: ItemStatus | None,
               window: Window) -> tuple[int, list[dict[str, Any]]]:
    """How many items of ``batch`` have ``status`` (None: all), and those in ``window``.

    Each item: seq, key, stage, payload, status, and error (its message, or None).
    """
    return count_items(batch, status), rt.storage.items.list_items(batch, status, window)


def list_errors(rt: Runtime, batch: Row, window: Window) -> tuple[int, list[Row]]:
    """How many items of ``batch`` failed, and their errors in ``window``: seq, key, message,
    failed_at."""
    return batch["failed_items"], rt.storage.items.list_errors(batch["id"], window)


def error_summary(rt: Runtime, batch: Row, top: int) -> dict[str, Any]:
    """The ``top`` most frequent error messages, each with its count and sample keys."""
    summary = rt.storage.items.error_summary(batch["id"], top)
    return {"failed_items": batch["failed_items"], **summary}
