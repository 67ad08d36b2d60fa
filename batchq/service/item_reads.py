"""A batch's items and item errors: ``/batches/{id}/items``, ``/errors``, ``/errors/summary``.

Every list is in input order (``seq``) and paged with ``first_result`` /
``max_results``. Totals come from the batch row's counters (exact by
invariant 1), so no list counts its rows.

An item's status follows from its page (``pages``: stage, ``first_pos``,
``item_count``, status): it is *processed* once its page is done, *failed*
when it has an ``item_errors`` row, *succeeded* when processed and not failed,
*unprocessed* otherwise (pages are created lazily, so an item may have no page
yet). Done pages are read once per request as *segments*: maximal runs
``[start, end)`` of positions of one stage whose pages are all done (few: pages
are claimed in order, so only the pages in flight leave holes). A status filter
then becomes a WHERE clause over (stage, pos) plus a ``seq`` range, and the
``items(batch_id, seq)`` index yields the rows in order without a sort. The
``seq`` range relies on one property of creation: within a stage, ``pos``
grows with ``seq`` (both count the items as they are read).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from batchq.domain.statuses import PageStatus
from batchq.storage.common import Row, rows
from batchq.storage.tables import item_errors, items, pages

DEFAULT_MAX_RESULTS = 100
MAX_RESULTS = 1000
DEFAULT_TOP_MESSAGES = 10
MAX_TOP_MESSAGES = 100
SAMPLE_KEYS = 3


class ItemStatus(StrEnum):
    """An item's outcome, as ``GET /batches/{id}/items?status=`` filters it."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNPROCESSED = "unprocessed"


@dataclass(frozen=True)
class Segment:
    """Positions ``start .. end - 1`` of ``stage``; ``end`` None means "to the stage's end"."""

    stage: int
    start: int
    end: int | None


@dataclass(frozen=True)
class Window:
    """A page of a list: skip ``first_result`` rows, return at most ``max_results``."""

    first_result: int = 0
    max_results: int = DEFAULT_MAX_RESULTS


def count_items(batch: Mapping[str, Any], status: ItemStatus | None) -> int:
    """How many items of ``batch`` have ``status`` (None: all), from its counters."""
    total, processed, failed = (batch["total_items"], batch["processed_items"],
                                batch["failed_items"])
    return {None: total, ItemStatus.FAILED: failed, ItemStatus.SUCCEEDED: processed - failed,
            ItemStatus.UNPROCESSED: total - processed}[status]


def list_errors(engine: sa.Engine, batch_id: str, window: Window) -> list[Row]:
    """The batch's item errors in input order: seq, key, message, failed_at."""
    query = _paged(
        sa.select(item_errors.c.seq, item_errors.c.key, item_errors.c.message,
                  item_errors.c.failed_at)
        .where(item_errors.c.batch_id == batch_id)
        .order_by(item_errors.c.seq), window)
    with engine.connect() as conn:
        return rows(conn.execute(query))


def error_summary(engine: sa.Engine, batch_id: str, top: int) -> dict[str, Any]:
    """The ``top`` most frequent error messages, each with its count and a few sample keys.

    Two passes over the batch's errors (GROUP BY, then the samples of the top
    messages); nothing proportional to the batch's item count.
    """
    by_message = (sa.select(item_errors.c.message, sa.func.count().label("count"))
                  .where(item_errors.c.batch_id == batch_id)
                  .group_by(item_errors.c.message))
    distinct = sa.select(sa.func.count()).select_from(by_message.subquery())
    ranked = by_message.order_by(sa.desc("count"), item_errors.c.message).limit(top)
    with engine.connect() as conn:
        messages = [{"message": message, "count": int(count), "sample_keys": []}
                    for message, count in conn.execute(ranked)]
        distinct_messages = int(conn.execute(distinct).scalar_one())
        samples = _sample_keys(conn, batch_id, [m["message"] for m in messages])
    for message in messages:
        message["sample_keys"] = samples.get(message["message"], [])
    return {"distinct_messages": distinct_messages, "messages": messages}


def _sample_keys(conn: sa.Connection, batch_id: str, messages: list[str]) -> dict[str, list[str]]:
    """The first ``SAMPLE_KEYS`` keys (in input order) that failed with each message."""
    if not messages:
        return {}
    numbered = (
        sa.select(item_errors.c.message, item_errors.c.key,
                  sa.func.row_number().over(partition_by=item_errors.c.message,
                                            order_by=item_errors.c.seq).label("n"))
        .where(item_errors.c.batch_id == batch_id, item_errors.c.message.in_(messages))
        .subquery()
    )
    query = (sa.select(numbered.c.message, numbered.c.key)
             .where(numbered.c.n <= SAMPLE_KEYS).order_by(numbered.c.message, numbered.c.n))
    samples: dict[str, list[str]] = {}
    for message, key in conn.execute(query):
        samples.setdefault(message, []).append(key)
    return samples


def list_items(engine: sa.Engine, batch: Mapping[str, Any], status: ItemStatus | None,
               window: Window) -> list[dict[str, Any]]:
    """The batch's items with ``status`` (None: all) in input order, each with its status.

    Each row: seq, key, stage, payload, status, and error (the message, or None).
    """
    batch_id = batch["id"]
    if window.first_result >= count_items(batch, status):
        return []  # past the end, by the counters read with the batch row the total comes from
    with engine.connect() as conn:
        if status is ItemStatus.FAILED:
            return _failed_items(conn, batch_id, window)
        done = done_segments(conn, batch_id)
        if status is None:
            return _all_items(conn, batch_id, done, window)
        wanted = (done if status is ItemStatus.SUCCEEDED
                  else open_segments(batch["stage_sizes"], done))
        return _items_in(conn, batch_id, wanted, status, window)


def done_segments(conn: sa.Connection, batch_id: str) -> list[Segment]:
    """The runs of positions whose pages are done, by stage and start (gaps and islands).

    A done page starts a new run unless it begins where the previous done
    page of its stage ended; a running sum of those starts numbers the runs.
    """
    end = pages.c.first_pos + pages.c.item_count
    previous_end = sa.func.lag(end).over(partition_by=pages.c.stage, order_by=pages.c.first_pos)
    done = (
        sa.select(pages.c.stage, pages.c.first_pos, end.label("end_pos"),
                  sa.case((pages.c.first_pos == previous_end, 0), else_=1).label("starts_run"))
        .where(pages.c.batch_id == batch_id, pages.c.status == PageStatus.DONE)
        .subquery()
    )
    numbered = sa.select(
        done.c.stage, done.c.first_pos, done.c.end_pos,
        sa.func.sum(done.c.starts_run).over(partition_by=done.c.stage,
                                            order_by=done.c.first_pos).label("run"),
    ).subquery()
    start = sa.func.min(numbered.c.first_pos)
    query = (sa.select(numbered.c.stage, start, sa.func.max(numbered.c.end_pos))
             .group_by(numbered.c.stage, numbered.c.run).order_by(numbered.c.stage, start))
    return [Segment(int(stage), int(first), int(last)) for stage, first, last in
            conn.execute(query)]


def open_segments(stage_sizes: Sequence[Sequence[int]], done: Sequence[Segment]) -> list[Segment]:
    """The complement of ``done`` in each stage: the unprocessed positions.

    The last run of each stage is left open-ended, so items appended to a
    stage after the batch row was read still count as unprocessed.
    """
    by_stage: dict[int, list[Segment]] = {}
    for segment in done:
        by_stage.setdefault(segment.stage, []).append(segment)
    holes: list[Segment] = []
    for stage, count in stage_sizes:
        position = 0
        for segment in by_stage.get(stage, []):
            if segment.start > position:
                holes.append(Segment(stage, position, segment.start))
            position = max(position, segment.end or position)
        if position < count:
            holes.append(Segment(stage, position, None))
    return holes


def _failed_items(conn: sa.Connection, batch_id: str, window: Window) -> list[dict[str, Any]]:
    query = _paged(
        sa.select(item_errors.c.seq, item_errors.c.key, item_errors.c.stage, items.c.payload,
                  item_errors.c.message)
        .join(items, _same_item(items, item_errors))
        .where(item_errors.c.batch_id == batch_id)
        .order_by(item_errors.c.seq), window)
    return [_item(row, ItemStatus.FAILED) for row in rows(conn.execute(query))]


def _all_items(conn: sa.Connection, batch_id: str, done: Sequence[Segment],
               window: Window) -> list[dict[str, Any]]:
    query = _paged(_items_with_errors(batch_id).order_by(items.c.seq), window)
    processed = _Lookup(done)
    listed = []
    for row in rows(conn.execute(query)):
        if row["message"] is not None:
            status = ItemStatus.FAILED
        elif processed.covers(row["stage"], row["pos"]):
            status = ItemStatus.SUCCEEDED
        else:
            status = ItemStatus.UNPROCESSED
        listed.append(_item(row, status))
    return listed


def _items_in(conn: sa.Connection, batch_id: str, segments: Sequence[Segment],
              status: ItemStatus, window: Window) -> list[dict[str, Any]]:
    """Items in ``segments`` (without an error when ``status`` is succeeded), in input order."""
    if not segments:
        return []
    query = _items_with_errors(batch_id).where(_in_segments(segments),
                                               *_seq_bounds(conn, batch_id, segments))
    if status is ItemStatus.SUCCEEDED:
        query = query.where(item_errors.c.pos.is_(None))
    query = _paged(query.order_by(items.c.seq), window)
    return [_item(row, status) for row in rows(conn.execute(query))]


def _items_with_errors(batch_id: str) -> sa.Select[Any]:
    return (sa.select(items.c.seq, items.c.key, items.c.stage, items.c.pos, items.c.payload,
                      item_errors.c.message)
            .outerjoin(item_errors, _same_item(items, item_errors))
            .where(items.c.batch_id == batch_id))


def _same_item(left: sa.Table, right: sa.Table) -> sa.ColumnElement[bool]:
    return sa.and_(left.c.batch_id == right.c.batch_id, left.c.stage == right.c.stage,
                   left.c.pos == right.c.pos)


def _in_segments(segments: Sequence[Segment]) -> sa.ColumnElement[bool]:
    clauses = []
    for segment in segments:
        clause = sa.and_(items.c.stage == segment.stage, items.c.pos >= segment.start)
        if segment.end is not None:
            clause = sa.and_(clause, items.c.pos < segment.end)
        clauses.append(clause)
    return sa.or_(*clauses)


def _seq_bounds(conn: sa.Connection, batch_id: str,
                segments: Sequence[Segment]) -> list[sa.ColumnElement[bool]]:
    """``seq`` limits that enclose ``segments``, found by primary-key lookups.

    They let the ``(batch_id, seq)`` index start at the first item that can
    match instead of skipping every item before it (e.g. a million processed
    items before the first unprocessed one).
    """
    bounds = []
    lowest = _seq_at(conn, batch_id, [(s.stage, s.start) for s in segments], sa.func.min)
    if lowest is not None:
        bounds.append(items.c.seq >= lowest)
    lasts = [(s.stage, s.end - 1) for s in segments if s.end is not None]
    if len(lasts) == len(segments):
        highest = _seq_at(conn, batch_id, lasts, sa.func.max)
        if highest is not None:
            bounds.append(items.c.seq <= highest)
    return bounds


def _seq_at(conn: sa.Connection, batch_id: str, positions: list[tuple[int, int]],
            aggregate: Any) -> int | None:
    """The lowest or highest ``seq`` of the items at ``positions``; None if none exists."""
    query = sa.select(aggregate(items.c.seq)).where(
        items.c.batch_id == batch_id, sa.tuple_(items.c.stage, items.c.pos).in_(positions))
    found = conn.execute(query).scalar_one()
    return None if found is None else int(found)


def _paged(query: sa.Select[Any], window: Window) -> sa.Select[Any]:
    return query.offset(window.first_result).limit(window.max_results)


def _item(row: Mapping[str, Any], status: ItemStatus) -> dict[str, Any]:
    return {"seq": row["seq"], "key": row["key"], "stage": row["stage"],
            "payload": row["payload"], "status": status.value, "error": row["message"]}


class _Lookup:
    """Is (stage, pos) inside one of the done segments? A binary search per stage."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self._by_stage: dict[int, tuple[list[int], list[Segment]]] = {}
        for segment in segments:
            starts, runs = self._by_stage.setdefault(segment.stage, ([], []))
            starts.append(segment.start)
            runs.append(segment)

    def covers(self, stage: int, pos: int) -> bool:
        starts, runs = self._by_stage.get(stage, ([], []))
        index = bisect.bisect_right(starts, pos) - 1
        if index < 0:
            return False
        end = runs[index].end
        return end is None or pos < end
