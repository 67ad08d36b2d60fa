"""The worker heartbeats: one row per live worker process, renewed every few seconds."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from batchq.storage.tables import worker_heartbeats


class WorkerHeartbeatRepository:
    """Liveness rows of worker processes (``batchq.engine.liveness``)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def beat(self, worker: str, now: datetime) -> None:
        """Renew the row of ``worker`` (only that process writes it), creating it first time."""
        with self.engine.begin() as conn:
            renewed = conn.execute(
                sa.update(worker_heartbeats).where(worker_heartbeats.c.worker == worker)
                .values(beat_at=now)
            )
            if renewed.rowcount == 0:
                conn.execute(sa.insert(worker_heartbeats).values(
                    worker=worker, started_at=now, beat_at=now))

    def forget(self, worker: str) -> None:
        """Delete the row of a worker process that stops: nothing of it is left to run."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(worker_heartbeats).where(worker_heartbeats.c.worker == worker))

    def delete_stale(self, before: datetime) -> int:
        """Delete rows last renewed before ``before``; returns how many."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.delete(worker_heartbeats).where(worker_heartbeats.c.beat_at < before))
            return int(result.rowcount)

    def last_beats(self) -> dict[str, datetime]:
        """When each known worker process last beat (diagnostics, tests)."""
        query = sa.select(worker_heartbeats.c.worker, worker_heartbeats.c.beat_at)
        with self.engine.connect() as conn:
            return {worker: beat_at for worker, beat_at in conn.execute(query)}
