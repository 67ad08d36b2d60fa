"""The reads the operator console shows beyond what the REST API answers.

Each one stays bounded without scanning items: the progress series groups the
batch's done pages into ``SERIES_BUCKETS`` time buckets, worker activity reads
the pages in flight of active batches, and an export reads its items in keyset
chunks. Who may see what is the REST API's rule: callers pass the batch they
got from ``batchq.service.listing`` and the caller's read scope.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from batchq.domain.item_outcomes import ItemStatus
from batchq.domain.lists import Window
from batchq.domain.permissions import Caller, is_operator, read_scope
from batchq.domain.statuses import PageStatus
from batchq.domain.throughput import (
    SERIES_BUCKETS,
    SeriesPoint,
    bucket_seconds,
    eta_seconds,
    items_per_second,
    recent_rate,
    series,
)
from batchq.runtime import Runtime
from batchq.storage.common import Row

#: Items an export reads per query: memory stays bounded however many it writes.
EXPORT_CHUNK = 1000


@dataclass(frozen=True)
class Throughput:
    """How fast a batch went: its series, the average and recent rates, and the ETA."""

    points: list[SeriesPoint]
    bucket_seconds: float
    items_per_second: float | None
    recent_items_per_second: float | None
    eta_seconds: float | None


def throughput(rt: Runtime, batch: Row, now: datetime) -> Throughput:
    """The batch's progress over time (from its done pages) and what it says of the end."""
    average = items_per_second(batch, now)
    if batch["started_at"] is None:
        return Throughput([], 1.0, None, None, eta_seconds(batch, None))
    width = bucket_seconds(batch, now)
    buckets: dict[int, tuple[int, int]] = {}
    for number, (processed, failed) in rt.storage.activity.finished_per_bucket(
            batch["id"], batch["started_at"], width).items():
        # A page that finished at the very end belongs in the last bucket.
        at = min(max(number, 0), SERIES_BUCKETS - 1)
        before = buckets.get(at, (0, 0))
        buckets[at] = (before[0] + processed, before[1] + failed)
    points = series(batch["started_at"], width, buckets)
    recent = recent_rate(points, width) if batch["finished_at"] is None else None
    return Throughput(points, width, average, recent, eta_seconds(batch, recent or average))


@dataclass
class WorkerRun:
    """What one worker runs of one batch now."""

    batch_id: str
    type: str
    pages: int
    since: datetime | None


@dataclass
class WorkerActivity:
    """The workers running pages of batches the caller may read, and the queue depth."""

    workers: dict[str, list[WorkerRun]] = field(default_factory=dict)
    #: Pages queued in the broker per readable batch: (batch id, type, pages).
    queued: list[tuple[str, str, int]] = field(default_factory=list)
    #: Service-wide, as ``/metrics`` reports them: pages queued, pages running, busy workers.
    all_queued: int = 0
    all_running: int = 0
    all_busy_workers: int = 0


def worker_activity(rt: Runtime, caller: Caller) -> WorkerActivity:
    """Who runs what of the batches ``caller`` may read, and how deep the queue is."""
    activity = WorkerActivity()
    scope = read_scope(caller)
    # Worker ids (host:pid) name the service's machines: only operators see them; others
    # see each worker under a number (docs/authorization.md).
    aliases: dict[str, str] = {}
    for row in rt.storage.activity.in_flight(scope):
        if row["status"] == PageStatus.QUEUED:
            activity.queued.append((row["batch_id"], row["type"], int(row["pages"])))
            continue
        worker = row["worker"] or "(unnamed)"
        if not is_operator(caller):
            worker = aliases.setdefault(worker, f"worker {len(aliases) + 1}")
        activity.workers.setdefault(worker, []).append(
            WorkerRun(row["batch_id"], row["type"], int(row["pages"]), row["since"]))
    if scope.everything:
        # The rows cover every batch: totals from the same read agree with the tables.
        activity.all_queued = sum(pages for _id, _type, pages in activity.queued)
        activity.all_running = sum(run.pages for runs in activity.workers.values()
                                   for run in runs)
        activity.all_busy_workers = len(activity.workers)
        return activity
    totals = rt.storage.metrics.totals()
    activity.all_queued = totals.pages_in_flight.get(PageStatus.QUEUED.value, 0)
    activity.all_running = totals.pages_in_flight.get(PageStatus.RUNNING.value, 0)
    activity.all_busy_workers = len(totals.busy_workers)
    return activity


def search_failed(rt: Runtime, batch: Row, text: str, window: Window) -> list[Row]:
    """The batch's item errors whose key or message contains ``text``, in input order."""
    if not text:
        return rt.storage.items.list_errors(batch["id"], window)
    return rt.storage.items.search_errors(batch["id"], text, window)


def export_items(rt: Runtime, batch: Row, status: ItemStatus) -> Iterator[Row]:
    """Every item of ``batch`` with ``status``, in input order, ``EXPORT_CHUNK`` per query.

    No connection is held between chunks. While the batch runs, an item may turn from
    unprocessed to processed between two chunks; each chunk is read as of its query.
    """
    after = -1
    while True:
        chunk = rt.storage.items.list_items(batch, status, Window(0, EXPORT_CHUNK, after))
        yield from chunk
        if len(chunk) < EXPORT_CHUNK:
            return
        after = chunk[-1]["seq"]
