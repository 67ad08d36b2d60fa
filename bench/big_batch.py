"""A large batch written by PostgreSQL itself, for the benchmarks of reads and retries.

``rebuild(database, ...)`` drops and recreates the database, migrates it and
inserts one batch of ``count`` items in pages of 100 with ``generate_series``:
the first ``done_fraction`` of its pages done, every ``fail_every``-th of their
items failed (one of seven messages). Nothing is sent through the API.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from batchq.batch_types.loading import load_types
from batchq.domain.lists import Window
from batchq.domain.permissions import Caller
from batchq.runtime import Runtime
from batchq.settings import Settings
from batchq.storage import Storage
from batchq.storage.engine import create_engine
from batchq.storage.migrate import upgrade
from batchq.storage.throttling import StartGate

SERVER = "postgresql://postgres@127.0.0.1:5432"
PAGE_SIZE = 100
SYSTEM = Caller("bench", is_system=True)
__all__ = ["SYSTEM", "Window", "bench_runtime", "rebuild"]


class NoBroker:
    """A dispatcher that sends nothing: the benchmarks run no worker."""

    def send_seed(self, batch_id: str) -> None:
        """Nothing to send."""

    def send_execute(self, batch_id: str, page_no: int) -> None:
        """Nothing to send."""

    def send_monitor(self, batch_id: str) -> None:
        """Nothing to send."""


def rebuild(database: str, batch_id: str, count: int, *, done_fraction: float = 1.0,
            fail_every: int = 10, status: str = "CompletedWithErrors") -> str:
    """A fresh database holding the one batch; returns the database's URL."""
    with create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
    url = f"{SERVER}/{database}"
    upgrade(url)
    engine = create_engine(url)
    pages = -(-count // PAGE_SIZE)
    done = int(pages * done_fraction)
    values = {"id": batch_id, "n": count, "pages": pages, "done": done, "every": fail_every,
              "status": status, "processed": min(count, done * PAGE_SIZE)}
    with engine.begin() as conn:
        for statement in _STATEMENTS:
            conn.execute(sa.text(statement), values)
        failed = conn.execute(sa.text("SELECT count(*) FROM item_errors")).scalar_one()
        conn.execute(sa.text("UPDATE batches SET failed_items = :f"), {"f": failed})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()
    return url


_STATEMENTS = (
    """INSERT INTO batches (id, type, status, suspended, params, total_items, processed_items,
           failed_items, total_jobs, jobs_created, jobs_completed, page_size, jobs_per_seed,
           stage_sizes, retention_days, created_at, finished_at, process_run, failure_threshold)
       VALUES (:id, 'echo', :status, false, '{}', :n, :processed, 0, :pages, :pages, :done,
           100, 100, json_build_array(json_build_array(0, :n)), 30, now(), now(), false, NULL)""",
    """INSERT INTO items (batch_id, stage, pos, seq, key, payload)
       SELECT :id, 0, g, g, 'k' || g, json_build_object('n', g, 'text', repeat('x', 40))
       FROM generate_series(0, :n - 1) g""",
    """INSERT INTO pages (batch_id, page_no, stage, first_pos, item_count, status, attempts,
           succeeded, failed)
       SELECT :id, g, 0, g * 100, least(100, :n - g * 100),
           CASE WHEN g < :done THEN 'done' ELSE 'created' END, 0, 0, 0
       FROM generate_series(0, :pages - 1) g""",
    """INSERT INTO item_errors (batch_id, stage, pos, seq, key, message, failed_at)
       SELECT :id, 0, g, g, 'k' || g, 'boom ' || (g % 7), now()
       FROM generate_series(3, least(:n, :done * 100) - 1, :every) g""",
)


def bench_runtime(url: str, **settings: Any) -> Runtime:
    """A runtime on ``url`` that sends no message."""
    config = Settings(database_url=url, **settings)
    engine = create_engine(url)
    return Runtime(config, Storage(engine, StartGate(config.tenant_limit_rules)),
                   load_types(()), NoBroker())
