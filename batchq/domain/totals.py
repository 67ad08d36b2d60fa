"""The service's totals right now, as ``/metrics`` reports them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServiceTotals:
    """What every API process and worker sees alike, from the database."""

    batches_by_status: dict[str, int]
    active_batches: int
    suspended_batches: int
    #: Items of active batches: all, processed, failed.
    active_items: dict[str, int]
    #: Pages in flight, by state: queued, running.
    pages_in_flight: dict[str, int]
    busy_workers: set[str] = field(default_factory=set)
