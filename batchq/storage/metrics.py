"""The aggregates ``/metrics`` reports, read at scrape time.

Every query is an indexed aggregate over batches, or over the pages of active
batches only.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from batchq.domain.statuses import ACTIVE_STATUSES, IN_FLIGHT_PAGES, PageStatus
from batchq.domain.totals import ServiceTotals
from batchq.storage.common import status_values
from batchq.storage.tables import batches, pages

_ACTIVE = status_values(ACTIVE_STATUSES)


class MetricsRepository:
    """One read of the service's totals."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def totals(self) -> ServiceTotals:
        """Batches by status, active batches and their items, pages in flight, busy workers."""
        with self.engine.connect() as conn:
            by_status: dict[str, int] = {
                str(status): int(count) for status, count in conn.execute(
                    sa.select(batches.c.status, sa.func.count()).group_by(batches.c.status))}
            active, suspended, total, processed, failed = conn.execute(_active_totals()).one()
            in_flight, workers = _pages_in_flight(conn)
        return ServiceTotals(
            batches_by_status=by_status,
            active_batches=int(active), suspended_batches=int(suspended),
            active_items={"total": int(total), "processed": int(processed),
                          "failed": int(failed)},
            pages_in_flight=in_flight, busy_workers=workers)


def _active_totals() -> sa.Select[Any]:
    return sa.select(
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(sa.case((batches.c.suspended, 1), else_=0)), 0),
        sa.func.coalesce(sa.func.sum(batches.c.total_items), 0),
        sa.func.coalesce(sa.func.sum(batches.c.processed_items), 0),
        sa.func.coalesce(sa.func.sum(batches.c.failed_items), 0),
    ).where(batches.c.status.in_(_ACTIVE))


def _pages_in_flight(conn: sa.Connection) -> tuple[dict[str, int], set[str]]:
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
    return by_status, workers
