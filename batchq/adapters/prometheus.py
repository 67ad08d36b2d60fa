"""Prometheus metrics, read from the database at scrape time.

The database is the source of truth and every API process sees all of it, so
each scrape reads gauges there instead of keeping counters per process (which
would need summing across gunicorn workers and celery nodes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from batchq.domain.statuses import BatchStatus
from batchq.domain.totals import ServiceTotals


class BatchqCollector(Collector):
    """Gauges of batches, items, pages and workers, computed on each scrape."""

    def __init__(self, read_totals: Callable[[], ServiceTotals]) -> None:
        self.read_totals = read_totals

    def collect(self) -> Iterator[GaugeMetricFamily]:
        totals = self.read_totals()
        yield _batches_by_status(totals)
        yield GaugeMetricFamily("batchq_active_batches", "Batches that can still make progress",
                                value=totals.active_batches)
        yield GaugeMetricFamily("batchq_suspended_batches", "Active batches that are suspended",
                                value=totals.suspended_batches)
        yield _labelled("batchq_active_batch_items",
                        "Items of active batches: all, processed, failed", totals.active_items)
        yield _labelled("batchq_jobs", "Pages (execution jobs) in the broker or running",
                        totals.pages_in_flight)
        yield GaugeMetricFamily("batchq_busy_workers", "Worker processes running a page now",
                                value=len(totals.busy_workers))


def _batches_by_status(totals: ServiceTotals) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily("batchq_batches", "Batches stored, by status", labels=["status"])
    for status in BatchStatus:
        gauge.add_metric([status.value], totals.batches_by_status.get(status.value, 0))
    return gauge


def _labelled(name: str, documentation: str, values: dict[str, int]) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation, labels=["state"])
    for state, value in values.items():
        gauge.add_metric([state], value)
    return gauge
