"""What pages did over time and what they do now: the operator console's reads over pages.

Both reads are bounded without scanning items: the progress series groups a
batch's done pages into a fixed number of time buckets, and the pages in flight
are those of active batches only (at most ``BATCHQ_MAX_QUEUED_JOBS`` queued per
batch, plus those running).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from batchq.domain.permissions import ReadScope
from batchq.domain.statuses import ACTIVE_STATUSES, IN_FLIGHT_PAGES, PageStatus
from batchq.storage.batches import scope_clause
from batchq.storage.common import Row, rows, status_values
from batchq.storage.engine import is_postgres
from batchq.storage.tables import batches, pages


class ActivityRepository:
    """Pages as the console shows them: finished over time, and in flight now."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def finished_per_bucket(self, batch_id: str, since: datetime,
                            width_seconds: float) -> dict[int, tuple[int, int]]:
        """{bucket: (processed, failed)} of the batch's done pages, by when each finished.

        Bucket n holds the pages that finished in ``[since + n * width, since + (n + 1) *
        width)``; one GROUP BY over the batch's pages (not its items).
        """
        with self.engine.connect() as conn:
            offset = _seconds_between(conn, pages.c.finished_at, sa.literal(since, sa.DateTime))
            bucket = _whole(conn, offset / width_seconds).label("bucket")
            query = (sa.select(bucket, sa.func.sum(pages.c.succeeded + pages.c.failed),
                               sa.func.sum(pages.c.failed))
                     .where(pages.c.batch_id == batch_id, pages.c.status == PageStatus.DONE,
                            pages.c.finished_at.is_not(None))
                     .group_by(bucket))
            return {int(number): (int(processed), int(failed))
                    for number, processed, failed in conn.execute(query)}

    def in_flight(self, scope: ReadScope) -> list[Row]:
        """Pages queued or running of the active batches ``scope`` covers, grouped.

        Each row: batch_id, type, status (queued or running), worker (None while
        queued), pages, since (the earliest start of those running).
        """
        active = sa.select(batches.c.id).where(
            batches.c.status.in_(status_values(ACTIVE_STATUSES)))
        query = (
            sa.select(pages.c.batch_id, batches.c.type, pages.c.status, pages.c.worker,
                      sa.func.count().label("pages"),
                      sa.func.min(pages.c.started_at).label("since"))
            .join(batches, batches.c.id == pages.c.batch_id)
            .where(pages.c.batch_id.in_(active), pages.c.status.in_(IN_FLIGHT_PAGES),
                   scope_clause(scope))
            .group_by(pages.c.batch_id, batches.c.type, pages.c.status, pages.c.worker)
            .order_by(pages.c.worker, pages.c.batch_id)
        )
        with self.engine.connect() as conn:
            return rows(conn.execute(query))


def _seconds_between(conn: sa.Connection, later: Any, earlier: Any) -> sa.ColumnElement[Any]:
    """Seconds from ``earlier`` to ``later`` (naive UTC times), with their fractions: SQLite's
    ``strftime('%s')`` would cut both to whole seconds, and so shift pages between buckets."""
    if is_postgres(conn):
        return sa.func.extract("epoch", later - earlier)
    return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400.0


def _whole(conn: sa.Connection, value: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """``value`` rounded down (it is never negative): PostgreSQL's CAST rounds to nearest,
    SQLite's truncates, and SQLite may lack ``floor``."""
    if is_postgres(conn):
        return sa.cast(sa.func.floor(value), sa.BigInteger)
    return sa.cast(value, sa.Integer)
