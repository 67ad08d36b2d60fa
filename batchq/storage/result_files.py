"""The result_files table: the file a batch's post-batch step produced (e.g. a CSV report)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from batchq.domain.results import ResultFile
from batchq.errors import Unstorable
from batchq.storage.tables import result_files


@dataclass(frozen=True)
class ResultFileInfo:
    """A stored result file, without its content."""

    filename: str
    media_type: str
    size: int


class ResultFileRepository:
    """At most one result file per batch."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def save(self, batch_id: str, file: ResultFile, now: datetime) -> None:
        """Store the batch's result file, replacing one a dead finaliser may have left."""
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.delete(result_files).where(result_files.c.batch_id == batch_id))
                conn.execute(sa.insert(result_files).values(
                    batch_id=batch_id, filename=file.filename, media_type=file.media_type,
                    content=bytes(file.content), created_at=now))
        except sa.exc.DBAPIError as exc:
            refusal = type(exc.orig).__name__
            raise Unstorable(f"the database refused it ({refusal})") from exc

    def get(self, batch_id: str) -> ResultFile | None:
        """The batch's result file with its content, or None."""
        query = (sa.select(result_files.c.filename, result_files.c.content,
                           result_files.c.media_type)
                 .where(result_files.c.batch_id == batch_id))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else ResultFile(row.filename, bytes(row.content),
                                                   row.media_type)

    def info(self, batch_id: str) -> ResultFileInfo | None:
        """Name, media type and size of the batch's result file (its content stays put)."""
        query = (sa.select(result_files.c.filename, result_files.c.media_type,
                           sa.func.length(result_files.c.content))
                 .where(result_files.c.batch_id == batch_id))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else ResultFileInfo(row[0], row[1], int(row[2]))
