"""What every repository shares: the clock, row types, and statements run in a caller's transaction.

The clock is the database's (``batchq.storage.clock``).

Lock order, which keeps batchq's transactions free of deadlocks (see
``batchq.storage.pages``): a worker's transaction changes page rows first and
the batch row last; every other transaction locks the batch row first
(``lock_batch``) and touches pages only with ``SKIP LOCKED`` (``skip_locked``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import sqlalchemy as sa

from batchq.domain.paging import PageSpec
from batchq.domain.statuses import BatchStatus, PageStatus
from batchq.storage.clock import utcnow as utcnow  # re-exported: every caller reads it
from batchq.storage.tables import batches, pages

#: A row as a read-only mapping of column name to value.
Row = Mapping[str, Any]


def rows(result: sa.CursorResult[Any]) -> list[Row]:
    """Every row of ``result`` as a mapping."""
    return cast(list[Row], list(result.mappings()))


def first_row(result: sa.CursorResult[Any]) -> dict[str, Any] | None:
    """The first row of ``result`` as a dict, or None."""
    row = result.mappings().first()
    return None if row is None else dict(row)


def status_values(statuses: Iterable[BatchStatus]) -> list[str]:
    """Statuses as the strings stored in the database."""
    return sorted(status.value for status in statuses)


def lock_batch(conn: sa.Connection, batch_id: str) -> dict[str, Any] | None:
    """Read the batch row and lock it until the transaction ends (PostgreSQL).

    On SQLite, ``BEGIN IMMEDIATE`` already serialises every writer.
    """
    query = sa.select(batches).where(batches.c.id == batch_id).with_for_update()
    return first_row(conn.execute(query))


def skip_locked(conn: sa.Connection, page_nos: sa.Select[Any]) -> sa.Select[Any]:
    """``page_nos`` locked with ``FOR UPDATE SKIP LOCKED``, for ``page_no.in_(...)``.

    On PostgreSQL it goes through a CTE: a locking subquery of an UPDATE may
    run more than once, and then its LIMIT no longer bounds the update; a CTE
    with a locking clause is never inlined, so it runs once. SQLite has no row
    locks (``BEGIN IMMEDIATE`` serialises writers) and reports no rowcount for
    a statement that starts with ``WITH``, so there the subquery stays plain.
    """
    if conn.dialect.name != "postgresql":
        return page_nos
    locked = page_nos.with_for_update(skip_locked=True).cte()
    return sa.select(locked.c.page_no)


def unqueue_pages(conn: sa.Connection, batch_id: str) -> None:
    """Take queued pages back to created, so their pending messages become no-ops.

    A queued page locked by a worker's transaction is skipped: that worker is
    finishing it, or claiming it and about to see the batch's flag and hand it back.
    """
    queued = skip_locked(
        conn,
        sa.select(pages.c.page_no)
        .where(pages.c.batch_id == batch_id, pages.c.status == PageStatus.QUEUED)
    )
    conn.execute(
        sa.update(pages)
        .where(pages.c.batch_id == batch_id, pages.c.page_no.in_(queued))
        .where(pages.c.status == PageStatus.QUEUED)
        .values(status=PageStatus.CREATED, queued_at=None)
    )


def current_stage(batch_id: str) -> sa.ScalarSelect[Any]:
    """The lowest stage with an unfinished page: only its pages may start."""
    return (
        sa.select(sa.func.min(pages.c.stage))
        .where(pages.c.batch_id == batch_id, pages.c.status != PageStatus.DONE)
        .scalar_subquery()
    )


def count_pages(conn: sa.Connection, batch_id: str, statuses: Iterable[str]) -> int:
    """How many pages of the batch are in one of ``statuses``."""
    query = (
        sa.select(sa.func.count())
        .select_from(pages)
        .where(pages.c.batch_id == batch_id, pages.c.status.in_([str(s) for s in statuses]))
    )
    return int(conn.execute(query).scalar_one())


def insert_pages(conn: sa.Connection, batch_id: str, specs: Sequence[PageSpec]) -> None:
    """Insert the pages ``specs`` describe, ``created``."""
    if specs:
        conn.execute(sa.insert(pages), [
            {"batch_id": batch_id, "page_no": spec.page_no, "stage": spec.stage,
             "first_pos": spec.first_pos, "item_count": spec.item_count,
             "status": PageStatus.CREATED.value, "attempts": 0, "succeeded": 0, "failed": 0}
            for spec in specs])
