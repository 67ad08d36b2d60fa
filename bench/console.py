"""The console's server time with 100,000 batches: the list page and the batch page (p50/p99).

Run from the project root::

    .venv/bin/python -m bench.console                     # 100,000 batches
    .venv/bin/python -m bench.console --batches 5000 --requests 50   # a quick run

1. A fresh ``batchq_bench`` database (Redis db 14, emptied, is not used) gets
   ``--batches`` finished batches, as ``bench/api.py`` makes them (20 tenants, 5
   types, 6 statuses, 200 creators), and its three users: a system user, a
   tenant admin and a view-all admin.
2. One more batch, still Processing, has ``--pages`` done pages finished over
   an hour and ``--errors`` item errors of 20 messages: the worst case of the
   batch page's chart (one GROUP BY over its pages) and error histogram.
3. The console runs in this process (the Flask app on a PostgreSQL pool, no
   HTTP in between: the time is the server's alone, from the request to the
   last byte of the page), signed in with each user's token cookie. Each page
   is requested ``--requests`` times after ``--warmup`` unmeasured requests:
   the list page as each user (unfiltered, and filtered by status and type),
   its rows fragment (what the list's live refresh costs every 2 s), a random
   finished batch's page, and the big batch's page, live part and chart.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.api import TYPES, create_users, insert_batches, percentile, pg_connect
from bench.rows import Row, print_rows
from bench.throughput import DATABASE_URL, reset_storage

BIG_BATCH = "00000000-0000-4000-8000-ffffffffffff"


def insert_big_batch(pages: int, errors: int) -> None:
    """A Processing batch with ``pages`` done pages over the last hour and ``errors`` errors."""
    items = pages * 100
    conn = pg_connect()
    try:
        with conn, conn.cursor() as cursor:
            cursor.execute(
                """INSERT INTO batches (id, type, status, suspended, tenant_id, create_user_id,
                       params, total_items, processed_items, failed_items, total_jobs,
                       jobs_created, jobs_completed, page_size, jobs_per_seed, stage_sizes,
                       retention_days, created_at, started_at)
                   VALUES (%s, 'echo', 'Processing', false, 'tenant-3', 'user-1', '{}',
                       %s, %s, %s, %s, %s, %s, 100, 100, %s, 30,
                       now() - interval '1 hour', now() - interval '1 hour')""",
                (BIG_BATCH, items * 2, items, errors, pages * 2, pages, pages,
                 f"[[0, {items * 2}]]"))
            cursor.execute(
                """INSERT INTO pages (batch_id, page_no, stage, first_pos, item_count, status,
                       attempts, worker, started_at, finished_at, succeeded, failed)
                   SELECT %s, g, 0, g * 100, 100, 'done', 1, 'bench:1',
                       now() - interval '1 hour' + g * (interval '1 hour' / %s),
                       now() - interval '1 hour' + (g + 1) * (interval '1 hour' / %s),
                       100 - (g %% 3), g %% 3
                   FROM generate_series(0, %s - 1) AS g""", (BIG_BATCH, pages, pages, pages))
            cursor.execute(
                """INSERT INTO item_errors (batch_id, stage, pos, seq, key, message, failed_at)
                   SELECT %s, 0, g, g, 'key-' || g, 'error number ' || (g %% 20), now()
                   FROM generate_series(0, %s - 1) AS g""", (BIG_BATCH, errors))
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE pages")
            cursor.execute("VACUUM ANALYZE item_errors")
    finally:
        conn.close()


def console_clients(tokens: dict[str, str]) -> dict[str, Any]:
    """A Flask test client per user, signed in to the console with the user's token."""
    from api import create_app
    from batchq.runtime import build_runtime
    from batchq.settings import Settings
    from workers.app import CeleryDispatcher, create_celery

    settings = Settings(database_url=DATABASE_URL, broker_url="redis://127.0.0.1:6379/14")
    app = create_app(runtime=build_runtime(settings, CeleryDispatcher(create_celery(settings))))
    clients = {}
    for name, token in tokens.items():
        client = app.test_client()
        answer = client.post("/console/sign-in", data={"token": token})
        assert answer.status_code == 303, answer.get_data(as_text=True)
        clients[name] = client
    return clients


def timed(request: Callable[[], Any], count: int, warmup: int) -> list[float]:
    """Milliseconds of each of ``count`` calls of ``request``, after ``warmup`` unmeasured."""
    samples = []
    for n in range(warmup + count):
        start = time.perf_counter()
        answer = request()
        elapsed = (time.perf_counter() - start) * 1000
        assert answer.status_code == 200, (answer.status_code, answer.get_data(as_text=True)[:300])
        if n >= warmup:
            samples.append(elapsed)
    return samples


def measure(clients: dict[str, Any], batches: int, count: int,
            warmup: int) -> list[tuple[str, list[float]]]:
    rng = random.Random(7)
    system = clients["system"]
    filtered = f"/console/batches?status=Completed&type={TYPES[1]}"

    def random_batch() -> Any:
        return system.get(f"/console/batches/00000000-0000-4000-8000-"
                          f"{rng.randint(1, batches):012x}")

    cases: list[tuple[str, Callable[[], Any]]] = [
        *[(f"list page, {name}", (lambda c=c: c.get("/console/batches")))
          for name, c in clients.items()],
        *[(f"list page filtered, {name}", (lambda c=c: c.get(filtered)))
          for name, c in clients.items()],
        ("list rows fragment, tenant admin",
         lambda: clients["tenant admin"].get("/console/batches/rows")),
        ("list page 1,000 rows deep, system",
         lambda: system.get("/console/batches?first=1000")),
        ("batch page, a finished batch", random_batch),
        ("batch page, big running batch", lambda: system.get(f"/console/batches/{BIG_BATCH}")),
        ("batch live part, big batch", lambda: system.get(f"/console/batches/{BIG_BATCH}/live")),
        ("batch chart part, big batch",
         lambda: system.get(f"/console/batches/{BIG_BATCH}/chart")),
    ]
    return [(name, timed(request, count, warmup)) for name, request in cases]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=10_000,
                        help="done pages of the big batch (default 10,000: 1M items)")
    parser.add_argument("--errors", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    return parser.parse_args(argv)


def figures(args: argparse.Namespace) -> tuple[str, list[Row]]:
    """The table's title and the p50 / p99 server time of each console page."""
    reset_storage()
    seconds = insert_batches(args.batches)
    insert_big_batch(args.pages, args.errors)
    tokens = create_users()
    clients = console_clients(tokens)
    results = measure(clients, args.batches, args.requests, args.warmup)
    title = (f"Console server time: {args.batches:,} batches (inserted in {seconds:.1f} s), "
             f"big batch {args.pages:,} pages / {args.errors:,} errors, "
             f"{args.requests} requests each")
    return title, [Row("console", f"{name} ({args.batches:,} batches)",
                       f"p50 {statistics.median(s):.1f} ms / p99 {percentile(s, 0.99):.1f} ms")
                   for name, s in results]


def run(quick: bool) -> list[Row]:
    """The benchmark's rows (``bench/run_all.py``); ``quick``: 10,000 batches, 50 requests."""
    argv = ["--batches", "10000", "--pages", "1000", "--errors", "1000", "--requests", "50"]
    return figures(parse_args(argv if quick else []))[1]


def main(argv: list[str] | None = None) -> int:
    title, rows = figures(parse_args(argv))
    print_rows(title, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
