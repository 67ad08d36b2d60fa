"""The migration that adds the batches' integer alias numbers the batches it finds."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from batchq.storage.engine import create_engine
from batchq.storage.migrate import upgrade


def check_existing_batches_are_numbered_in_creation_order(database_url: str) -> None:
    """Upgrade ``database_url`` (empty) to 0003, add three batches, upgrade to head."""
    upgrade(database_url, "0003")
    engine = create_engine(database_url)
    start = datetime(2026, 1, 1)
    try:
        with engine.begin() as conn:
            for n, batch_id in enumerate(["c", "a", "b"]):
                conn.execute(sa.text(
                    "INSERT INTO batches (id, type, status, suspended, params, total_items, "
                    "processed_items, failed_items, total_jobs, jobs_created, jobs_completed, "
                    "page_size, jobs_per_seed, stage_sizes, retention_days, created_at, "
                    "source_failures, process_run) VALUES (:id, 'echo', 'Waiting', false, "
                    "'{}', 0, 0, 0, 0, 0, 0, 1, 1, '[]', 30, :at, 0, false)"),
                    {"id": batch_id, "at": start + timedelta(minutes=n)})
        upgrade(database_url)
        with engine.begin() as conn:
            numbers = dict(conn.execute(sa.text("SELECT id, number FROM batches")).all())
        assert numbers == {"c": 1, "a": 2, "b": 3}
    finally:
        engine.dispose()
