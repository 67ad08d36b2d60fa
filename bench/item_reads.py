"""Latency of the item and error lists on a 1,000,000-item batch in PostgreSQL.

    .venv/bin/python -m bench.item_reads            # timings
    .venv/bin/python -m bench.item_reads --explain  # and each list's plan

It drops and recreates the database ``batchq_bench_items`` and touches nothing
else. The batch is half processed, as a batch is mid-run: of its 10,000 pages
of 100 items, the seed created 6,000 and the first 5,000 are done; every 50th
item of those failed, with one of seven messages. A second batch of 200,000
items shares the tables. Each figure is the best of three calls.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from batchq.domain.lists import Window
from batchq.runtime import Runtime
from batchq.service.item_reads import ItemStatus, error_summary, list_errors, list_items
from batchq.storage.engine import create_engine
from batchq.storage.migrate import upgrade
from bench.big_batch import bench_runtime
from bench.rows import Row, print_rows

SERVER = "postgresql://postgres@127.0.0.1:5432"
DATABASE = "batchq_bench_items"
BATCH = "bench-1m"


def build(url: str, items: int) -> None:
    """The two batches, their items, pages and errors, written by PostgreSQL itself."""
    with create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{DATABASE}"'))
    upgrade(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        for batch_id, count in ((BATCH, items), ("neighbour", items // 5)):
            _insert_batch(conn, batch_id, count)
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()


def _insert_batch(conn: sa.Connection, batch_id: str, count: int) -> None:
    pages, created, done = count // 100, count // 100 * 6 // 10, count // 200
    failed = len(range(3, done * 100, 50))
    values = {"id": batch_id, "n": count, "pages": pages, "created": created, "done": done,
              "failed": failed}
    conn.execute(sa.text("""
        INSERT INTO batches (id, type, status, suspended, params, total_items, processed_items,
            failed_items, total_jobs, jobs_created, jobs_completed, page_size, jobs_per_seed,
            stage_sizes, retention_days, created_at, process_run)
        VALUES (:id, 'echo', 'Processing', false, '{}', :n, :done * 100, :failed, :pages,
            :created, :done, 100, 100, json_build_array(json_build_array(0, :n)), 30, now(),
            false)"""), values)
    conn.execute(sa.text("""
        INSERT INTO items (batch_id, stage, pos, seq, key, payload)
        SELECT :id, 0, g, g, 'k' || g, json_build_object('n', g)
        FROM generate_series(0, :n - 1) g"""), values)
    conn.execute(sa.text("""
        INSERT INTO pages (batch_id, page_no, stage, first_pos, item_count, status, attempts,
            succeeded, failed)
        SELECT :id, g, 0, g * 100, 100, CASE WHEN g < :done THEN 'done' ELSE 'created' END,
            0, 0, 0
        FROM generate_series(0, :created - 1) g"""), values)
    conn.execute(sa.text("""
        INSERT INTO item_errors (batch_id, stage, pos, seq, key, message, failed_at)
        SELECT :id, 0, g, g, 'k' || g, 'boom ' || (g % 7), now()
        FROM generate_series(3, :done * 100 - 1, 50) g"""), values)


def measure(rt: Runtime, explain: bool) -> list[Row]:
    """Each list's best-of-three time, as a row."""
    batch = rt.storage.batches.get(BATCH)
    assert batch is not None
    calls: list[tuple[str, Callable[[], Any]]] = []
    for status in (None, *ItemStatus):
        for first in (0, 100_000):
            calls.append((f"items status={status or 'all'} firstResult={first}",
                          _items(rt, batch, status, Window(first, 100))))
    for first in (0, 9_000):
        calls.append((f"errors firstResult={first}",
                      lambda first=first: list_errors(rt, batch, Window(first, 100))))
    calls.append(("errors/summary limit=10", lambda: error_summary(rt, batch, 10)))
    rows = []
    for label, call in calls:
        best = min(_timed(call) for _ in range(3))
        rows.append(Row("item_reads", f"{label} ({batch['total_items']:,} items)",
                        f"{best * 1000:.1f} ms"))
        if explain:
            _explain_last_select(rt.storage.engine, call)
    return rows


def _items(rt: Runtime, batch: Any, status: ItemStatus | None,
           window: Window) -> Callable[[], Any]:
    return lambda: list_items(rt, batch, status, window)


def _timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _explain_last_select(engine: sa.Engine, call: Callable[[], Any]) -> None:
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    if not sent:
        print("    (no query: answered from the batch's counters)")
        return
    statement, parameters = sent[-1]
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + statement, parameters)
        print("\n".join("    " + row[0] for row in cursor.fetchall()))
    finally:
        raw.close()


def figures(items: int, explain: bool = False) -> list[Row]:
    url = f"{SERVER}/{DATABASE}"
    started = time.perf_counter()
    build(url, items)
    print(f"built {items} items in {time.perf_counter() - started:.1f} s", flush=True)
    rt = bench_runtime(url)
    try:
        return measure(rt, explain)
    finally:
        rt.storage.engine.dispose()


def run(quick: bool) -> list[Row]:
    """The benchmark's rows (``bench/run_all.py``); ``quick``: 200,000 items."""
    return figures(200_000 if quick else 1_000_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--explain", action="store_true", help="print each list's plan")
    args = parser.parse_args()
    print_rows("Item and error lists (server time, best of three)",
               figures(args.items, args.explain))


if __name__ == "__main__":
    main()
