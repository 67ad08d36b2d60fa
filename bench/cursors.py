"""Latency of the ``afterIndex`` cursor at the start, middle and end of a 1,000,000-item batch.

    .venv/bin/python -m bench.cursors                  # 1,000,000 items
    .venv/bin/python -m bench.cursors --items 100000   # quick

It drops and recreates the database ``batchq_bench_cursors`` and touches
nothing else. The batch is written by PostgreSQL (``bench.big_batch``), half
processed, every 50th processed item failed. Each figure is the best of five
``GET /batches/{id}/items`` (and ``/errors``) calls through the Flask app in
this process (no network), 100 items a window: with ``afterIndex`` at the
start, middle and end of the batch, and with the ``firstResult`` offset at the
same places for comparison (an offset costs its length; a cursor does not).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from api import create_app
from batchq.service.users import NewUser, create_user
from bench.big_batch import bench_runtime, rebuild
from bench.rows import Row, print_rows

DATABASE = "batchq_bench_cursors"
BATCH = "bench-cursors-1m"
CALLS = 5


def best_of(client: Any, path: str) -> float:
    """The fastest of ``CALLS`` calls of ``path``, in milliseconds."""
    timings = []
    for _ in range(CALLS):
        started = time.perf_counter()
        answer = client.get(path)
        timings.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.get_json()
    return min(timings) * 1000


def measure(items: int) -> list[Row]:
    """Each list's time at the start, middle and end, by cursor and by offset."""
    started = time.perf_counter()
    url = rebuild(DATABASE, BATCH, items, done_fraction=0.5, fail_every=50,
                  status="Processing")
    print(f"built {items:,} items in {time.perf_counter() - started:.1f} s", flush=True)
    rt = bench_runtime(url)
    client = create_app(runtime=rt).test_client()
    token = create_user(rt.storage.users, NewUser("bench", is_system=True))
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    half = items // 2  # the processed half comes first
    rows = []
    for label, query, first, count in (
            ("items", "", 0, items),
            ("items status=succeeded", "&status=succeeded", 0, half),
            ("items status=unprocessed", "&status=unprocessed", half, items - half)):
        base = f"/batches/{BATCH}/items?maxResults=100{query}"
        # Cursors: after the item before the start, the middle and the last window of the list
        # (by input index); offsets: the same places, by position in the list.
        indexes = [first - 1, first + count // 2, first + count - 101]
        positions = [0, count // 2, max(0, count - 100 - count // 50)]
        cursor = [best_of(client, f"{base}&afterIndex={at}") for at in indexes]
        offset = [best_of(client, f"{base}&firstResult={at}") for at in positions]
        rows.append(_places(f"{label} afterIndex", items, cursor))
        rows.append(_places(f"{label} firstResult", items, offset))
    errors = f"/batches/{BATCH}/errors?maxResults=100"
    error_places = [-1, items // 4, items // 2 - 200]
    rows.append(_places("errors afterIndex", items, [
        best_of(client, f"{errors}&afterIndex={at}") for at in error_places]))
    rt.storage.dispose()
    return rows


def _places(label: str, items: int, timings: list[float]) -> Row:
    return Row("cursors", f"{label} of {items:,} items: start / middle / end",
               " / ".join(f"{ms:.1f}" for ms in timings) + " ms")


def run(quick: bool) -> list[Row]:
    """The benchmark's rows (``bench/run_all.py``); ``quick``: 100,000 items."""
    return measure(100_000 if quick else 1_000_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    args = parser.parse_args()
    print_rows("Item and error lists by cursor and by offset", measure(args.items))


if __name__ == "__main__":
    main()
