"""The items of batches and their errors: inserting them, reading a page's, listing them.

Every list is in input order (``seq``). A status filter turns the batch's done
pages into *segments* (``batchq.domain.item_outcomes``), read once per request
as maximal runs of done positions (few: pages are claimed in order, so only the
pages in flight leave holes); the filter then becomes a WHERE clause over
(stage, pos) plus a ``seq`` range, and the ``items(batch_id, seq)`` index yields
the rows in order without a sort. The ``seq`` range relies on one property of
creation: within a stage, ``pos`` grows with ``seq`` (both count the items as
they are read).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from batchq.domain.item_outcomes import (
    SAMPLE_KEYS,
    ItemStatus,
    Segment,
    SegmentLookup,
    count_items,
    open_segments,
)
from batchq.domain.items import DuplicateKeys
from batchq.domain.lists import Window
from batchq.domain.statuses import PageStatus
from batchq.storage.common import Row, rows
from batchq.storage.engine import is_postgres
from batchq.storage.retries import pending_retry_seq_bounds, retry_page_items
from batchq.storage.tables import item_errors, item_retries, items, pages

#: Item errors read per query when streaming them: memory stays bounded.
ERROR_CHUNK = 1000


class ItemRepository:
    """Items and item errors of batches."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def of_page(self, batch_id: str, stage: int, first_pos: int, count: int) -> list[Row]:
        """The items of one page, in order: pos, seq, key, payload."""
        query = (
            sa.select(items.c.pos, items.c.seq, items.c.key, items.c.payload)
            .where(items.c.batch_id == batch_id, items.c.stage == stage)
            .where(items.c.pos >= first_pos, items.c.pos < first_pos + count)
            .order_by(items.c.pos)
        )
        with self.engine.connect() as conn:
            return rows(conn.execute(query))

    def of_page_row(self, page: Row) -> list[Row]:
        """The items of the page ``page`` (a row of ``pages``), a retry page's included."""
        if page["item_attempt"] > 1:
            with self.engine.connect() as conn:
                return retry_page_items(conn, page["batch_id"], [page["page_no"]])[page["page_no"]]
        return self.of_page(page["batch_id"], page["stage"], page["first_pos"], page["item_count"])

    def first_errors(self, batch_id: str, limit: int) -> list[Row]:
        """The first ``limit`` item errors of a batch, in page order: seq, key, message.

        Ordered by the primary key, so the read stops after ``limit`` rows
        however many items failed.
        """
        query = (
            sa.select(item_errors.c.seq, item_errors.c.key, item_errors.c.message)
            .where(item_errors.c.batch_id == batch_id)
            .order_by(item_errors.c.stage, item_errors.c.pos)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return rows(conn.execute(query))

    def iter_errors(self, batch_id: str) -> Iterator[tuple[str, str]]:
        """(key, message) of every failed item in input order, ``ERROR_CHUNK`` per query.

        Keyset paging on the (batch_id, seq) index: each query starts after the
        last item it returned, so memory is bounded however many items failed.
        """
        after = -1
        while True:
            query = (sa.select(item_errors.c.seq, item_errors.c.key, item_errors.c.message)
                     .where(item_errors.c.batch_id == batch_id, item_errors.c.seq > after)
                     .order_by(item_errors.c.seq).limit(ERROR_CHUNK))
            with self.engine.connect() as conn:
                chunk = conn.execute(query).all()
            for row in chunk:
                yield row.key, row.message
            if len(chunk) < ERROR_CHUNK:
                return
            after = chunk[-1].seq

    def list_errors(self, batch_id: str, window: Window) -> list[Row]:
        """The batch's item errors in input order: seq, key, message, failed_at, attempts."""
        query = _windowed(
            sa.select(item_errors.c.seq, item_errors.c.key, item_errors.c.message,
                      item_errors.c.failed_at, item_errors.c.attempts)
            .where(item_errors.c.batch_id == batch_id)
            .order_by(item_errors.c.seq), window, item_errors.c.seq)
        with self.engine.connect() as conn:
            return rows(conn.execute(query))

    def search_errors(self, batch_id: str, text: str, window: Window) -> list[Row]:
        """The batch's item errors whose key or message contains ``text`` (any case), in
        input order: seq, key, message, failed_at. It reads the batch's errors, not its items.
        """
        query = _windowed(
            sa.select(item_errors.c.seq, item_errors.c.key, item_errors.c.message,
                      item_errors.c.failed_at)
            .where(item_errors.c.batch_id == batch_id)
            .where(sa.or_(item_errors.c.key.icontains(text, autoescape=True),
                          item_errors.c.message.icontains(text, autoescape=True)))
            .order_by(item_errors.c.seq), window)
        with self.engine.connect() as conn:
            return rows(conn.execute(query))

    def error_summary(self, batch_id: str, top: int) -> dict[str, Any]:
        """The ``top`` most frequent error messages, each with its count and a few sample keys.

        Two passes over the batch's errors (GROUP BY, then the samples of the top
        messages); nothing proportional to the batch's item count.
        """
        by_message = (sa.select(item_errors.c.message, sa.func.count().label("count"))
                      .where(item_errors.c.batch_id == batch_id)
                      .group_by(item_errors.c.message))
        distinct = sa.select(sa.func.count()).select_from(by_message.subquery())
        ranked = by_message.order_by(sa.desc("count"), item_errors.c.message).limit(top)
        with self.engine.connect() as conn:
            messages = [{"message": message, "count": int(count), "sample_keys": []}
                        for message, count in conn.execute(ranked)]
            distinct_messages = int(conn.execute(distinct).scalar_one())
            samples = _sample_keys(conn, batch_id, [m["message"] for m in messages])
        for message in messages:
            message["sample_keys"] = samples.get(message["message"], [])
        return {"distinct_messages": distinct_messages, "messages": messages}

    def list_items(self, batch: Mapping[str, Any], status: ItemStatus | None,
                   window: Window) -> list[dict[str, Any]]:
        """The batch's items with ``status`` (None: all) in input order, each with its status.

        Each row: seq, key, stage, payload, status, and error (the message, or None).
        """
        batch_id = batch["id"]
        if window.after_index is None and window.first_result >= count_items(batch, status):
            return []  # past the end, by the counters read with the batch row the total comes from
        with self.engine.connect() as conn:
            if status is ItemStatus.FAILED:
                return _failed_items(conn, batch_id, window)
            done = done_segments(conn, batch_id)
            if status is None:
                return _all_items(conn, batch_id, done, window)
            if status is ItemStatus.SUCCEEDED:
                return _succeeded_items(conn, batch_id, done, window)
            return _unprocessed_items(conn, batch_id, open_segments(batch["stage_sizes"], done),
                                      window)


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
        .where(pages.c.item_attempt == 1)  # a retry page's range holds others' items
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


def _failed_items(conn: sa.Connection, batch_id: str, window: Window) -> list[dict[str, Any]]:
    query = _windowed(
        sa.select(item_errors.c.seq, item_errors.c.key, item_errors.c.stage, items.c.payload,
                  item_errors.c.message)
        .join(items, _same_item(items, item_errors))
        .where(item_errors.c.batch_id == batch_id)
        .order_by(item_errors.c.seq), window, item_errors.c.seq)
    return [_item(row, ItemStatus.FAILED) for row in rows(conn.execute(query))]


def _all_items(conn: sa.Connection, batch_id: str, done: Sequence[Segment],
               window: Window) -> list[dict[str, Any]]:
    query = _windowed(_items_with_outcomes(batch_id).order_by(items.c.seq), window, items.c.seq)
    processed = SegmentLookup(done)
    listed = []
    for row in rows(conn.execute(query)):
        if row["message"] is not None:
            status = ItemStatus.FAILED
        elif not row["pending"] and processed.covers(row["stage"], row["pos"]):
            status = ItemStatus.SUCCEEDED
        else:
            status = ItemStatus.UNPROCESSED  # its page has not run, or its retry is pending
        listed.append(_item(row, status))
    return listed


def _succeeded_items(conn: sa.Connection, batch_id: str, done: Sequence[Segment],
                     window: Window) -> list[dict[str, Any]]:
    """Items of done pages without an error and without a pending retry, in input order."""
    if not done:
        return []
    query = (_items_with_outcomes(batch_id)
             .where(_in_segments(done), *_seq_bounds(conn, batch_id, done))
             .where(item_errors.c.pos.is_(None), ~_pending_retry()))
    query = _windowed(query.order_by(items.c.seq), window, items.c.seq)
    return [_item(row, ItemStatus.SUCCEEDED) for row in rows(conn.execute(query))]


def _unprocessed_items(conn: sa.Connection, batch_id: str, holes: Sequence[Segment],
                       window: Window) -> list[dict[str, Any]]:
    """Items outside the done pages, and items whose retry is pending, in input order."""
    lowest, highest = pending_retry_seq_bounds(conn, batch_id)
    if not holes and lowest is None:
        return []
    wanted = []
    bounds: list[sa.ColumnElement[bool]] = []
    if holes:
        wanted.append(_in_segments(holes))
        bounds = _seq_bounds(conn, batch_id, holes, also=(lowest, highest))
    if lowest is not None:
        wanted.append(_pending_retry())
        if not holes:
            bounds = [items.c.seq >= lowest, items.c.seq <= highest]
    query = _items_with_outcomes(batch_id).where(sa.or_(*wanted), *bounds)
    query = _windowed(query.order_by(items.c.seq), window, items.c.seq)
    return [_item(row, ItemStatus.UNPROCESSED) for row in rows(conn.execute(query))]


def _items_with_outcomes(batch_id: str) -> sa.Select[Any]:
    """Items with their error message, and ``pending`` when their retry is pending."""
    return (sa.select(items.c.seq, items.c.key, items.c.stage, items.c.pos, items.c.payload,
                      item_errors.c.message, _pending_retry().label("pending"))
            .outerjoin(item_errors, _same_item(items, item_errors))
            .where(items.c.batch_id == batch_id))


def _pending_retry() -> sa.Exists:
    """Is the item's retry pending? A primary-key look-up per item, as a subquery: a join to
    ``item_retries`` would keep PostgreSQL from walking the ``(batch_id, seq)`` index."""
    return sa.exists().where(_same_item(item_retries, items))


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


def _seq_bounds(conn: sa.Connection, batch_id: str, segments: Sequence[Segment],
                also: tuple[Any, Any] = (None, None)) -> list[sa.ColumnElement[bool]]:
    """``seq`` limits that enclose ``segments`` (and the range ``also``), found by primary-key
    lookups.

    They let the ``(batch_id, seq)`` index start at the first item that can
    match instead of skipping every item before it (e.g. a million processed
    items before the first unprocessed one).
    """
    bounds = []
    lowest = _seq_at(conn, batch_id, [(s.stage, s.start) for s in segments], sa.func.min)
    if lowest is not None:
        bounds.append(items.c.seq >= min(lowest, also[0] if also[0] is not None else lowest))
    lasts = [(s.stage, s.end - 1) for s in segments if s.end is not None]
    if len(lasts) == len(segments):
        highest = _seq_at(conn, batch_id, lasts, sa.func.max)
        if highest is not None:
            bounds.append(items.c.seq <= max(highest, also[1] if also[1] is not None
                                             else highest))
    return bounds


def _seq_at(conn: sa.Connection, batch_id: str, positions: list[tuple[int, int]],
            aggregate: Any) -> int | None:
    """The lowest or highest ``seq`` of the items at ``positions``; None if none exists."""
    query = sa.select(aggregate(items.c.seq)).where(
        items.c.batch_id == batch_id, sa.tuple_(items.c.stage, items.c.pos).in_(positions))
    found = conn.execute(query).scalar_one()
    return None if found is None else int(found)


def _windowed(query: sa.Select[Any], window: Window,
              seq: sa.ColumnElement[Any] | None = None) -> sa.Select[Any]:
    """The window of ``query``: after ``window.after_index`` (a keyset on ``seq``), else at
    the offset ``first_result``."""
    if window.after_index is not None and seq is not None:
        query = query.where(seq > window.after_index)
    return query.offset(window.first_result).limit(window.max_results)


def _item(row: Mapping[str, Any], status: ItemStatus) -> dict[str, Any]:
    return {"seq": row["seq"], "key": row["key"], "stage": row["stage"],
            "payload": row["payload"], "status": status.value, "error": row["message"]}



#: How many repeated keys a refused batch names; all of them are counted.
MAX_REPORTED_DUPLICATES = 100


def duplicate_keys(conn: sa.Connection, batch_id: str) -> DuplicateKeys:
    """The batch's items whose key an earlier item has, found by the database.

    One aggregate over the batch's items, in the creating transaction: no key
    set in the API's memory, whatever the item count. Items minus distinct keys
    counts the repeats; on PostgreSQL that took 0.3 s per million items, half
    the time of ``GROUP BY key HAVING count(*) > 1`` (whose hash table spills to
    disk). The grouping, which names the repeating items, only runs when there
    are some.
    """
    repeats = conn.execute(
        sa.select(sa.func.count() - sa.func.count(sa.distinct(items.c.key)))
        .where(items.c.batch_id == batch_id)
    ).scalar_one()
    if not repeats:
        return DuplicateKeys(0)
    groups = (
        sa.select(items.c.key, sa.func.min(items.c.seq).label("first_seq"))
        .where(items.c.batch_id == batch_id)
        .group_by(items.c.key).having(sa.func.count() > 1)
        .subquery()
    )
    first = conn.execute(
        sa.select(items.c.seq, items.c.key, groups.c.first_seq)
        .join_from(items, groups, items.c.key == groups.c.key)
        .where(items.c.batch_id == batch_id, items.c.seq > groups.c.first_seq)
        .order_by(items.c.seq).limit(MAX_REPORTED_DUPLICATES)
    )
    return DuplicateKeys(int(repeats), rows(first))


def insert_items(conn: sa.Connection, item_chunks: Iterable[list[dict[str, Any]]]) -> None:
    if not is_postgres(conn):
        for chunk in item_chunks:
            if chunk:
                conn.execute(sa.insert(items), chunk)
        return
    source = _CopySource(item_chunks)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.copy_expert(
            "COPY items (batch_id, stage, pos, seq, key, payload) FROM STDIN WITH (FORMAT csv)",
            source, size=_COPY_READ_CHARS,
        )
    except Exception:
        if source.error is not None:  # psycopg2 reports it as a cancelled COPY
            raise source.error from None
        raise
    finally:
        cursor.close()


_COPY_READ_CHARS = 256 * 1024


class _CopySource:
    """The COPY input, made chunk by chunk as psycopg2 reads it.

    One COPY for the whole batch, rather than one per chunk: PostgreSQL inserts
    the rows sent so far while this process reads and checks the next ones, so
    the two work in parallel (COPY is about three times the rate of a multi-row
    insert, and this overlap took an upload from 0.25x to over 0.5x its rate).
    Only the current chunk's text is held. An exception raised by the chunks
    aborts the COPY and reaches the caller unchanged.
    """

    def __init__(self, item_chunks: Iterable[list[dict[str, Any]]]) -> None:
        self.chunks = iter(item_chunks)
        self.error: Exception | None = None

    def read(self, size: int = -1) -> str:
        """The next chunk's rows as CSV text ("" at the end); ``size`` is only a hint."""
        try:
            chunk = next(self.chunks, None)
        except Exception as exc:
            self.error = exc
            raise
        return "" if chunk is None else _csv_rows(chunk)


def _csv_rows(chunk: list[dict[str, Any]]) -> str:
    """The chunk as COPY's CSV: key and payload always quoted, their quotes doubled.

    Written by hand rather than by ``csv.writer``, which took twice as long: this
    runs for every item of every batch. Creation refused U+0000, the one
    character a quoted CSV field cannot carry into PostgreSQL's text.
    """
    encode, q, qq = _encode_json, '"', '""'
    return "".join([
        f'{item["batch_id"]},{item["stage"]},{item["pos"]},{item["seq"]},'
        f'"{item["key"].replace(q, qq)}","{encode(item["payload"]).replace(q, qq)}"\n'
        for item in chunk
    ])


#: The separators batchq writes JSON with; one encoder, not one per item.
_std_encode_json = json.JSONEncoder(separators=(",", ":")).encode


def _encode_json(value: Any) -> str:
    """``value`` as compact JSON: orjson (fifteen times as fast, and this runs for every item
    of a batch), else the standard library for what orjson refuses (integers past 64 bits)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError
        return _std_encode_json(value)
