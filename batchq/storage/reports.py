"""Queries of what a batch reports beyond its counters: result files and item errors.

Mixed into ``batchq.store.Store``. None of them scans a batch's items.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from batchq.batch_types.registry import ResultFile
from batchq.storage.tables import item_errors, result_files

#: Item errors a post-batch step reads per query: its memory stays bounded.
ERROR_CHUNK = 1000


@dataclass(frozen=True)
class ResultFileInfo:
    """A stored result file, without its content."""

    filename: str
    media_type: str
    size: int


class ReportStore:
    """Result files, and item errors streamed in order."""

    engine: sa.Engine

    def save_result_file(self, batch_id: str, file: ResultFile, now: datetime) -> None:
        """Store the batch's result file, replacing one a dead finaliser may have left."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(result_files).where(result_files.c.batch_id == batch_id))
            conn.execute(sa.insert(result_files).values(
                batch_id=batch_id, filename=file.filename, media_type=file.media_type,
                content=bytes(file.content), created_at=now))

    def result_file(self, batch_id: str) -> ResultFile | None:
        """The batch's result file with its content, or None."""
        query = (sa.select(result_files.c.filename, result_files.c.content,
                           result_files.c.media_type)
                 .where(result_files.c.batch_id == batch_id))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else ResultFile(row.filename, bytes(row.content),
                                                   row.media_type)

    def result_file_info(self, batch_id: str) -> ResultFileInfo | None:
        """Name, media type and size of the batch's result file (its content stays put)."""
        query = (sa.select(result_files.c.filename, result_files.c.media_type,
                           sa.func.length(result_files.c.content))
                 .where(result_files.c.batch_id == batch_id))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else ResultFileInfo(row[0], row[1], int(row[2]))

    def iter_item_errors(self, batch_id: str) -> Iterator[tuple[str, str]]:
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
