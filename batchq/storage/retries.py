"""Retry pages: items that failed transiently, run again on a later page of their batch.

The transaction that counts a page whose outcome holds retries
(``PageRepository.finish``) also creates a *retry page* for them: a created
page of the same stage, whose ``item_attempt`` is one more than the counted
page's and whose ``not_before`` is the longest delay its items asked for; its
items are listed in ``item_retries``, one row per item while its retry is
pending. The retry page is numbered after every page the batch has and counted
in ``total_jobs``, ``jobs_created`` and ``retry_jobs`` (so the seed, which
creates the batch's own pages from ``jobs_created - retry_jobs``, numbers them
as before); counting a retry page deletes its ``item_retries`` rows in the same
transaction and adds one to ``retry_jobs_completed``.

So each item is counted once, by the page on which it succeeded or failed for
good (with its ``attempts``); an item whose retry is pending is unprocessed; the
failure threshold sees final failures only; and a worker killed on a retry page
leaves it to be re-run like any page (invariants 1 and 2).

Every function runs inside the caller's transaction. Retry pages are written
after the batch row is locked (their numbers come from it), which keeps the
lock order of ``batchq.storage.pages``: new rows wait for no other transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from batchq.domain.page_runs import PageOutcome
from batchq.domain.statuses import PageStatus
from batchq.storage.common import Row, rows
from batchq.storage.tables import item_retries, items, pages


def ready(now: datetime) -> sa.ColumnElement[bool]:
    """Pages that may start at ``now``: every page but a retry page whose time has not come."""
    return sa.or_(pages.c.not_before.is_(None), pages.c.not_before <= now)


def retry_increments(counted: Sequence[PageOutcome]) -> dict[str, int]:
    """How the batch's page counters grow with ``counted``: one retry page per outcome with
    retries, one retry page completed per counted retry page."""
    new_pages = sum(1 for outcome in counted if outcome.retries)
    completed = sum(1 for outcome in counted if outcome.item_attempt > 1)
    return {"new_pages": new_pages, "completed": completed}


def schedule_retries(conn: sa.Connection, batch_id: str, counted: Sequence[PageOutcome],
                     first_page_no: int, now: datetime) -> None:
    """Create the retry pages of ``counted``, numbered from ``first_page_no``, with their items.

    Call ``clear_counted_retries`` first: an item failing again on a retry page
    moves from that page's rows to the new page's.
    """
    page_rows, item_rows = [], []
    for page_no, outcome in enumerate((o for o in counted if o.retries), first_page_no):
        retried = sorted(outcome.retries, key=lambda r: r.pos)
        delay = max(retry.delay for retry in retried)
        page_rows.append({
            "batch_id": batch_id, "page_no": page_no, "stage": retried[0].stage,
            "first_pos": retried[0].pos, "item_count": len(retried),
            "status": PageStatus.CREATED.value, "attempts": 0, "succeeded": 0, "failed": 0,
            "item_attempt": outcome.item_attempt + 1,
            "not_before": now + timedelta(seconds=delay)})
        item_rows += [{"batch_id": batch_id, "stage": r.stage, "pos": r.pos, "seq": r.seq,
                       "page_no": page_no, "last_error": r.message} for r in retried]
    if page_rows:
        conn.execute(sa.insert(pages), page_rows)
        conn.execute(sa.insert(item_retries), item_rows)


def clear_counted_retries(conn: sa.Connection, batch_id: str,
                          counted: Sequence[PageOutcome]) -> None:
    """The retries of counted retry pages are over: their items succeeded, failed or moved on."""
    page_nos = [outcome.page_no for outcome in counted if outcome.item_attempt > 1]
    if page_nos:
        conn.execute(sa.delete(item_retries).where(item_retries.c.batch_id == batch_id,
                                                   item_retries.c.page_no.in_(page_nos)))


def retry_page_items(conn: sa.Connection, batch_id: str,
                     page_nos: Sequence[int]) -> dict[int, list[Row]]:
    """The items of retry pages, by page, each in order: stage, pos, seq, key, payload."""
    query = (
        sa.select(item_retries.c.page_no, items.c.stage, items.c.pos, items.c.seq, items.c.key,
                  items.c.payload)
        .join(items, sa.and_(items.c.batch_id == item_retries.c.batch_id,
                             items.c.stage == item_retries.c.stage,
                             items.c.pos == item_retries.c.pos))
        .where(item_retries.c.batch_id == batch_id, item_retries.c.page_no.in_(list(page_nos)))
        .order_by(item_retries.c.page_no, items.c.pos)
    )
    grouped: dict[int, list[Row]] = {page_no: [] for page_no in page_nos}
    for row in rows(conn.execute(query)):
        grouped[row["page_no"]].append(row)
    return grouped


def pending_retry_seq_bounds(conn: sa.Connection, batch_id: str) -> tuple[Any, Any]:
    """The lowest and highest ``seq`` of the batch's items whose retry is pending (or Nones)."""
    query = (sa.select(sa.func.min(item_retries.c.seq), sa.func.max(item_retries.c.seq))
             .where(item_retries.c.batch_id == batch_id))
    lowest, highest = conn.execute(query).one()
    return lowest, highest
