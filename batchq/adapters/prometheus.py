"""Prometheus metrics, read from the database at scrape time.

The database is the source of truth and every API process sees all of it, so
each scrape reads gauges there instead of keeping counters per process (which
would need summing across gunicorn workers and celery nodes). Every query is
an indexed aggregate over batches, or over the pages of active batches only.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from batchq.domain.statuses import ACTIVE_STATUSES, IN_FLIGHT_PAGES, BatchStatus, PageStatus
from batchq.storage.common import status_values
from batchq.storage.tables import batches, pages

_ACTIVE = status_values(ACTIVE_STATUSES)


class BatchqCollector(Collector):
    """Gauges of batches, items, pages and workers, computed on each scrape."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.engine.connect() as conn:
            yield _batches_by_status(conn)
            yield from _active_items(conn)
            yield from _in_flight_pages(conn)


def _batches_by_status(conn: sa.Connection) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily("batchq_batches", "Batches stored, by status",
                              labels=["status"])
    counts: dict[str, int] = dict(conn.execute(sa.select(batches.c.status, sa.func.count())
                               .group_by(batches.c.status)).all())
    for status in BatchStatus:
        gauge.add_metric([status.value], counts.get(status.value, 0))
    return gauge


def _active_items(conn: sa.Connection) -> Iterator[GaugeMetricFamily]:
    query = sa.select(
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(sa.case((batches.c.suspended, 1), else_=0)), 0),
        sa.func.coalesce(sa.func.sum(batches.c.total_items), 0),
        sa.func.coalesce(sa.func.sum(batches.c.processed_items), 0),
        sa.func.coalesce(sa.func.sum(batches.c.failed_items), 0),
    ).where(batches.c.status.in_(_ACTIVE))
    active, suspended, total, processed, failed = conn.execute(query).one()
    yield GaugeMetricFamily("batchq_active_batches", "Batches that can still make progress",
                            value=active)
    yield GaugeMetricFamily("batchq_suspended_batches", "Active batches that are suspended",
                            value=suspended)
    items = GaugeMetricFamily("batchq_active_batch_items",
                              "Items of active batches: all, processed, failed",
                              labels=["state"])
    for state, value in (("total", total), ("processed", processed), ("failed", failed)):
        items.add_metric([state], value)
    yield items


def _in_flight_pages(conn: sa.Connection) -> Iterator[GaugeMetricFamily]:
    active_ids = sa.select(batches.c.id).where(batches.c.status.in_(_ACTIVE))
    query = (sa.select(pages.c.status, pages.c.worker, sa.func.count())
             .where(pages.c.batch_id.in_(active_ids), pages.c.status.in_(IN_FLIGHT_PAGES))
             .group_by(pages.c.status, pages.c.worker))
    by_status = dict.fromkeys(IN_FLIGHT_PAGES, 0)
    workers: set[str] = set()
    for status, worker, count in conn.execute(query):
        by_status[status] += count
        if worker and status == PageStatus.RUNNING:
            workers.add(worker)
    jobs = GaugeMetricFamily("batchq_jobs", "Pages (execution jobs) in the broker or running",
                             labels=["state"])
    for status, count in by_status.items():
        jobs.add_metric([status], count)
    yield jobs
    yield GaugeMetricFamily("batchq_busy_workers", "Worker processes running a page now",
                            value=len(workers))
