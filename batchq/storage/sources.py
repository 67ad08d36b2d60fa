"""Queries of source batches and batch-process runs; mixed into ``batchq.store.Store``.

A source batch's items arrive chunk by chunk. Each chunk is stored in one
transaction with its pages, the batch's new totals and the source's next
cursor, so a seed that dies while reading resumes at the last stored cursor
and stores no item twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from batchq.domain.paging import chunk_page_specs
from batchq.domain.statuses import ACTIVE_STATUSES, PageStatus, StopReason
from batchq.storage.common import Row, cancellable, lock_batch, status_values, unqueue_pages
from batchq.storage.tables import batches, pages


class SourceStore:
    """Reading a source at its saved cursor, storing chunks, and finding process runs."""

    engine: sa.Engine

    def _insert_items(self, conn: sa.Connection, chunk: list[dict[str, Any]]) -> None:
        raise NotImplementedError  # Store's COPY / multi-row insert

    def begin_source_read(self, batch_id: str, now: datetime) -> Row | None:
        """The source batch to read the next chunk of, or None when it must not be read.

        Not read: a finished or stopping batch, a suspended one (reading resumes
        with it), one whose source is exhausted, or a batch posted with its items.
        ``seeded_at`` is set now, so the monitor does not re-send the seed while
        this read runs (as long as it is shorter than ``requeue_after_seconds``).
        """
        with self.engine.begin() as conn:
            batch = lock_batch(conn, batch_id)
            if batch is None or batch["source_exhausted"] is not False:
                return None
            if not cancellable(batch) or batch["suspended"]:
                return None
            conn.execute(sa.update(batches).where(batches.c.id == batch_id)
                         .values(seeded_at=now))
            return batch

    def add_source_chunk(self, read: Row, rows: list[dict[str, Any]], next_cursor: Any,
                         now: datetime) -> int | None:
        """Store a chunk read from ``read``'s cursor; returns its page count, None if dropped.

        Dropped, storing nothing: the batch stopped meanwhile, or another seed
        already stored the chunk at this cursor (its total or cursor moved on).
        """
        with self.engine.begin() as conn:
            batch = lock_batch(conn, read["id"])
            if (batch is None or not cancellable(batch) or batch["source_exhausted"] is not False
                    or batch["total_items"] != read["total_items"]
                    or batch["source_cursor"] != read["source_cursor"]):
                return None
            total = batch["total_items"] + len(rows)
            specs = chunk_page_specs(batch["total_jobs"], batch["total_items"], len(rows),
                                     batch["page_size"])
            self._insert_items(conn, rows)
            if specs:
                conn.execute(sa.insert(pages), [
                    {"batch_id": batch["id"], "page_no": spec.page_no, "stage": spec.stage,
                     "first_pos": spec.first_pos, "item_count": spec.item_count,
                     "status": PageStatus.CREATED.value, "attempts": 0, "succeeded": 0,
                     "failed": 0}
                    for spec in specs])
            conn.execute(
                sa.update(batches).where(batches.c.id == batch["id"]).values(
                    total_items=total, stage_sizes=[[0, total]] if total else [],
                    total_jobs=batch["total_jobs"] + len(specs),
                    jobs_created=batch["jobs_created"] + len(specs),
                    source_cursor=next_cursor, source_exhausted=next_cursor is None,
                    source_failures=0, seeded_at=now))
            return len(specs)

    def count_source_failure(self, batch_id: str) -> int | None:
        """Count one more read at which the source raised; the count in a row, or None
        when the batch no longer reads its source (finished or stopping)."""
        with self.engine.begin() as conn:
            batch = lock_batch(conn, batch_id)
            if batch is None or not cancellable(batch):
                return None
            failures = int(batch["source_failures"]) + 1
            conn.execute(sa.update(batches).where(batches.c.id == batch_id)
                         .values(source_failures=failures))
            return failures

    def fail_source(self, batch_id: str, reason: str) -> bool:
        """Drain the batch because its source failed; the monitor ends it ``Failed``."""
        with self.engine.begin() as conn:
            batch = lock_batch(conn, batch_id)
            if batch is None or not cancellable(batch):
                return False
            conn.execute(
                sa.update(batches).where(batches.c.id == batch_id)
                .values(stop_reason=StopReason.SOURCE_FAILED.value, failure_reason=reason))
            unqueue_pages(conn, batch_id)
            return True

    # -- batch-process runs -----------------------------------------------------

    def active_process_run(self, type_code: str) -> Row | None:
        """The active run of a batch process (at most one: ``uq_batches_active_process``)."""
        return self._process_runs(type_code, status_values(ACTIVE_STATUSES))

    def last_process_run(self, type_code: str) -> Row | None:
        """The most recently created run of a batch process, active or finished."""
        return self._process_runs(type_code, None)

    def _process_runs(self, type_code: str, statuses: Sequence[str] | None) -> Row | None:
        query = (
            sa.select(batches)
            .where(batches.c.type == type_code, batches.c.process_run.is_(True))
            .order_by(batches.c.created_at.desc(), batches.c.id.desc())
            .limit(1)
        )
        if statuses is not None:
            query = query.where(batches.c.status.in_(statuses))
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
            return None if row is None else dict(row)
