"""How fast a batch goes and when it will end, from its counters and its progress over time.

The progress over time is a *series*: the items that pages finished in each of
equal time buckets since the batch started, read from the pages' ``finished_at``
and counts (``batchq.storage.activity``), never from the items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

#: How many buckets a series has, whatever the batch's length: its read stays bounded.
SERIES_BUCKETS = 60
#: The last buckets the recent rate (and so the ETA) is measured over.
RECENT_BUCKETS = 5


@dataclass(frozen=True)
class SeriesPoint:
    """Items that pages finished in one bucket, and the totals up to its end."""

    ends_at: datetime
    processed: int
    failed: int
    processed_total: int
    failed_total: int


def elapsed_seconds(batch: Mapping[str, Any], now: datetime) -> float | None:
    """Seconds the batch has run (to its end, if it ended); None before it started."""
    started: datetime | None = batch["started_at"]
    if started is None:
        return None
    ended: datetime = batch["finished_at"] or now
    return max((ended - started).total_seconds(), 0.0)


def items_per_second(batch: Mapping[str, Any], now: datetime) -> float | None:
    """Processed items per second since the batch started; None before it started."""
    elapsed = elapsed_seconds(batch, now)
    if elapsed is None:
        return None
    return int(batch["processed_items"]) / elapsed if elapsed > 0 else 0.0


def bucket_seconds(batch: Mapping[str, Any], now: datetime) -> float:
    """The width of a series bucket: the run so far in ``SERIES_BUCKETS``, at least 1 s."""
    return max((elapsed_seconds(batch, now) or 0.0) / SERIES_BUCKETS, 1.0)


def series(started_at: datetime, width: float,
           buckets: Mapping[int, tuple[int, int]]) -> list[SeriesPoint]:
    """The series from ``buckets`` {bucket number: (processed, failed)}, gaps filled with 0."""
    if not buckets:
        return []
    points, processed_total, failed_total = [], 0, 0
    for number in range(max(buckets) + 1):
        processed, failed = buckets.get(number, (0, 0))
        processed_total += processed
        failed_total += failed
        points.append(SeriesPoint(started_at + timedelta(seconds=width * (number + 1)),
                                  processed, failed, processed_total, failed_total))
    return points


def recent_rate(points: Sequence[SeriesPoint], width: float) -> float | None:
    """Items per second over the last ``RECENT_BUCKETS`` buckets; None without a series."""
    recent = points[-RECENT_BUCKETS:]
    if not recent:
        return None
    return sum(point.processed for point in recent) / (width * len(recent))


def eta_seconds(batch: Mapping[str, Any], rate: float | None) -> float | None:
    """Seconds until every item is processed at ``rate`` items/s; None if it cannot be told."""
    remaining = int(batch["total_items"]) - int(batch["processed_items"])
    if batch["finished_at"] is not None or remaining <= 0:
        return 0.0 if remaining <= 0 else None
    if not rate:
        return None
    return remaining / rate
