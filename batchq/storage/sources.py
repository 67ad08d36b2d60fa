"""Source batches: reading a type's source chunk by chunk, at the cursor saved last.

A source batch's items arrive chunk by chunk. Each chunk is stored in one
transaction with its pages, the batch's new totals and the source's next
cursor, so a seed that dies while reading resumes at the last stored cursor
and stores no item twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from batchq.domain.lifecycle import cancellable
from batchq.domain.paging import chunk_page_specs
from batchq.domain.statuses import StopReason
from batchq.storage.common import Row, insert_pages, lock_batch, unqueue_pages
from batchq.storage.items import insert_items
from batchq.storage.tables import batches


class SourceRepository:
    """Reading a source batch's source at its saved cursor, and storing what it read."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def begin_read(self, batch_id: str, now: datetime) -> Row | None:
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

    def add_chunk(self, read: Row, rows: list[dict[str, Any]], next_cursor: Any,
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
            insert_items(conn, [rows])
            insert_pages(conn, batch["id"], specs)
            conn.execute(
                sa.update(batches).where(batches.c.id == batch["id"]).values(
                    total_items=total, stage_sizes=[[0, total]] if total else [],
                    total_jobs=batch["total_jobs"] + len(specs),
                    jobs_created=batch["jobs_created"] + len(specs),
                    source_cursor=next_cursor, source_exhausted=next_cursor is None,
                    source_failures=0, seeded_at=now))
            return len(specs)

    def count_failure(self, batch_id: str) -> int | None:
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

    def fail(self, batch_id: str, reason: str) -> bool:
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
