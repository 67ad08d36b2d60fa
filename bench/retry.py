"""Retrying the failed part of a 1,000,000-item batch: time, and the memory it takes here.

    .venv/bin/python -m bench.retry                   # 1,000,000 items, all failed
    .venv/bin/python -m bench.retry --items 50000     # quick
    .venv/bin/python -m bench.retry --explain         # and the INSERT ... SELECT's plan

It drops and recreates the database ``batchq_bench_retry`` and touches nothing
else. The original batch is written by PostgreSQL (``bench.big_batch``): every
``--fail-every``-th item failed (default every item, so the retry holds them
all), and with ``--done`` below 1 the rest of its pages never ran (a cancelled
batch, whose ``unprocessed`` items are retried too). Each retry is
``batchq.service.retry_batches.retry_batch``, the call behind ``POST
/batches/{id}/retry``, timed in this process, with the peak of Python's
allocations (tracemalloc) and the growth of this process's peak RSS: both stay
flat whatever the item count, as the items are copied by one ``INSERT ...
SELECT`` inside PostgreSQL.
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
from typing import Any

import sqlalchemy as sa

from batchq.service.retry_batches import retry_batch
from bench.big_batch import SYSTEM, bench_runtime, rebuild
from bench.rows import Row, print_rows

DATABASE = "batchq_bench_retry"
BATCH = "bench-retry-1m"


def measure(rt: Any, selection: str) -> tuple[float, float, float, int, tuple[str, Any]]:
    """(seconds, peak Python MB, peak RSS growth MB, items, the copy and its parameters) of a
    retry."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    sa.event.listen(rt.storage.engine, "before_cursor_execute", record)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.perf_counter()
    try:
        created = retry_batch(rt, SYSTEM, BATCH, selection)
    finally:
        elapsed = time.perf_counter() - started
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        sa.event.remove(rt.storage.engine, "before_cursor_execute", record)
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    copy = next(s for s in sent if s[0].lstrip().startswith("INSERT INTO items"))
    return elapsed, peak / 2**20, rss_growth / 1024, int(created["total_items"]), copy


def explain_copy(rt: Any, copy: tuple[str, Any]) -> None:
    """The plan of the copy, run with ANALYZE in a transaction that is rolled back."""
    statement, parameters = copy
    parameters = {**parameters, "param_1": "explained"}  # another batch id than the retry's
    raw = rt.storage.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + statement, parameters)
        print("\n".join("    " + row[0] for row in cursor.fetchall()))
    finally:
        raw.rollback()
        raw.close()


def figures(items: int, fail_every: int = 1, done: float = 1.0,
            explain: bool = False) -> list[Row]:
    """A retry of each selection of a finished batch of ``items``: time, Python peak, RSS."""
    started = time.perf_counter()
    status = "CompletedWithErrors" if done >= 1 else "Cancelled"
    url = rebuild(DATABASE, BATCH, items, done_fraction=done, fail_every=fail_every,
                  status=status)
    print(f"built a {status} batch of {items:,} items in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    rt = bench_runtime(url, max_active_batches_per_user=0)
    selections = ["failed"] if done >= 1 else ["failed", "unprocessed", "failed+unprocessed"]
    rows = []
    for selection in selections:
        seconds, python_mb, rss_mb, count, copy = measure(rt, selection)
        rows.append(Row("retry", f"retry of {selection} ({count:,} of {items:,} items): "
                                 "seconds / Python peak / RSS growth",
                        f"{seconds:.2f} s / {python_mb:.2f} MB / {rss_mb:.1f} MB"))
        if explain:
            explain_copy(rt, copy)
    rt.storage.dispose()
    return rows


def run(quick: bool) -> list[Row]:
    """The benchmark's rows (``bench/run_all.py``); ``quick``: 100,000 items."""
    return figures(100_000 if quick else 1_000_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--fail-every", type=int, default=1,
                        help="every n-th item of the done pages failed (default 1: all)")
    parser.add_argument("--done", type=float, default=1.0,
                        help="the fraction of pages that ran (default 1.0)")
    parser.add_argument("--explain", action="store_true", help="print the copy's plan")
    args = parser.parse_args()
    print_rows("Retry batches", figures(args.items, args.fail_every, args.done, args.explain))


if __name__ == "__main__":
    main()
