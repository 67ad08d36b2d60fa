"""Latency of small batches: one 10-item ``echo`` batch from POST to its final status.

Run from the project root::

    .venv/bin/python -m bench.latency            # 200 sequential, 2,000 from 20 clients
    .venv/bin/python -m bench.latency --quick    # 50 sequential, 400 from 20 clients

On PostgreSQL + Redis (a fresh ``batchq_bench`` database, Redis db 14; ``BENCH_DB_NAME``
and ``BENCH_BROKER_URL`` choose others), with the API under gunicorn (gthread), one
Celery worker node of 2 pool processes and beat, all started here:

1. sequential: a client POSTs a batch and polls ``GET /batches/{id}`` (every 2 ms, on a
   kept-alive connection) until it is final; p50 and p99 over the batches
   (targets: 50 ms and 200 ms);
2. concurrent: 20 clients POST their share of batches at once; batches/s from before the
   first POST until every batch is final, both read on the database's clock, and every
   batch final with exact counts;
3. the baseline, after batchq's processes stopped: a Celery chord of a group of 10 echo
   tasks with a callback (``bench/plain_chord.py``, Redis as broker and result backend),
   on a worker of 2 pool processes, from ``apply_async`` until the callback's result is
   read; batchq's p50 must be at most the chord's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg2

from bench import throughput as tp
from bench.rows import Row, print_rows

BENCH = "latency"
ITEMS = [{"n": n} for n in range(10)]
POLL_SECONDS = 0.002
FINAL = {"Completed", "CompletedWithErrors", "PostBatchFailed", "TooManyFailed",
         "Cancelled", "Failed"}


class Client:
    """One HTTP client on a kept-alive connection, as an integrator's SDK would hold."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {tp._token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                return response.status, json.loads(response.read() or b"null")
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def post_batch(self) -> str:
        status, created = self.call("POST", "/batches", {"type": "echo", "items": ITEMS})
        if status != 201:
            raise RuntimeError(f"POST /batches answered {status}: {created}")
        return str(created["id"])

    def post_and_wait(self, timeout: float = 30) -> float:
        """Seconds from the POST's start until a GET shows the batch final (and exact)."""
        started = time.perf_counter()
        batch_id = self.post_batch()
        deadline = started + timeout
        while True:
            status, batch = self.call("GET", f"/batches/{batch_id}")
            if status == 200 and batch["status"] in FINAL:
                seconds = time.perf_counter() - started
                if (batch["status"], batch["processedItems"]) != ("Completed", len(ITEMS)):
                    raise RuntimeError(f"batch {batch_id} ended {batch['status']} with "
                                       f"{batch['processedItems']} items")
                return seconds
            if time.perf_counter() > deadline:
                raise RuntimeError(f"batch {batch_id} not final after {timeout:g}s: {batch}")
            time.sleep(POLL_SECONDS)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def start_batchq(procs: tp.Processes, workdir: Path) -> tuple[int, list[tp.Proc]]:
    """The API (gunicorn gthread), a worker node of 2 pool processes and beat; the API port."""
    data_dir = workdir / "batchq-data"
    data_dir.mkdir()
    env = {**tp.batchq_env(data_dir), "BATCHQ_MAX_ACTIVE_BATCHES_PER_USER": "0"}
    port = tp.free_port()
    api = procs.spawn("api", [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
        "--worker-class", "gthread", "--threads", "16", "api:create_app()"], env)
    worker = procs.spawn("batchq-worker", tp.celery_worker("workers.app", "batchq",
                                                           "bench-latency", 2), env)
    beat = procs.spawn("beat", [sys.executable, "-m", "celery", "-A", "workers.app", "beat",
                                "--loglevel", "WARNING", "--schedule",
                                str(workdir / "beat-schedule")], env)
    tp.wait_until(lambda: tp._healthy(port), 60, "the API's /healthz", api)
    os.environ.update({k: v for k, v in env.items() if k.startswith("BATCHQ_")})
    from workers.app import create_celery

    tp.wait_worker_ready(create_celery(), "bench-latency", worker, 2)
    return port, [api, worker, beat]


def sequential(port: int, count: int) -> list[float]:
    client = Client(port)
    for _ in range(10):  # warm-up: connections, imports, plans
        client.post_and_wait()
    return [client.post_and_wait() for _ in range(count)]


def concurrent(port: int, clients: int, count: int) -> tuple[list[str], float]:
    """``count`` batches from ``clients`` threads at once; their ids and the posting time."""
    ids: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def post(share: int) -> None:
        client = Client(port)
        try:
            mine = [client.post_batch() for _ in range(share)]
        except BaseException as exc:
            errors.append(exc)
            return
        with lock:
            ids.extend(mine)

    shares = [count // clients + (1 if n < count % clients else 0) for n in range(clients)]
    threads = [threading.Thread(target=post, args=(share,)) for share in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"a client failed: {errors[0]!r}")
    return ids, time.perf_counter() - started


def database_now(cursor: Any) -> float:
    cursor.execute("SELECT extract(epoch FROM clock_timestamp())")
    return float(cursor.fetchone()[0])


def concurrent_on_database_clock(port: int, clients: int, count: int,
                                 timeout: float) -> dict[str, Any]:
    """Post ``count`` batches from ``clients`` at once and wait until all are final, timed
    on the database's clock (one clock, whatever process wrote what); their outcome."""
    query = """SELECT count(*) FILTER (WHERE status IN %s),
                      count(*) FILTER (WHERE status = 'Completed' AND processed_items = 10)
               FROM batches WHERE id = ANY(%s)"""
    conn = psycopg2.connect(host=tp.PG_HOST, port=tp.PG_PORT, user=tp.PG_USER,
                            dbname=tp.DB_NAME)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            started = database_now(cursor)
            ids, posting = concurrent(port, clients, count)
            deadline = time.monotonic() + timeout
            while True:
                cursor.execute(query, (tuple(FINAL), ids))
                final, exact = cursor.fetchone()
                if final == len(ids) or time.monotonic() > deadline:
                    return {"ids": ids, "posting": posting, "final": final, "exact": exact,
                            "span": database_now(cursor) - started}
                time.sleep(0.02)
    finally:
        conn.close()


def chords(procs: tp.Processes, count: int) -> list[float]:
    """Seconds from ``apply_async`` to the callback's result, for ``count`` chords in turn."""
    from celery import chord, group

    from bench import plain_chord

    worker = procs.spawn("chord-worker", tp.celery_worker(
        "bench.plain_chord", plain_chord.QUEUE, "bench-chord", 2), tp.subprocess_env())
    tp.wait_worker_ready(plain_chord.app, "bench-chord", worker, 2)

    def one() -> float:
        started = time.perf_counter()
        header = group(plain_chord.echo.s(item) for item in ITEMS)
        result = chord(header)(plain_chord.done.s())
        if result.get(timeout=30) != len(ITEMS):
            raise RuntimeError("the chord's callback did not see every item")
        return time.perf_counter() - started

    for _ in range(10):
        one()
    seconds = [one() for _ in range(count)]
    procs.stop(worker)
    return seconds


def measure(sequential_count: int, clients: int, concurrent_count: int) -> list[Row]:
    load_start = tp.load()
    with tempfile.TemporaryDirectory(prefix="batchq-latency-") as tmp, \
            tp.Processes(Path(tmp)) as procs, tp.log_tails_on_error(Path(tmp)):
        tp.reset_storage()
        port, started = start_batchq(procs, Path(tmp))
        seq = sequential(port, sequential_count)
        outcome = concurrent_on_database_clock(port, clients, concurrent_count, timeout=600)
        ids, posting = outcome["ids"], outcome["posting"]
        procs.stop(*started)
        chord_seconds = chords(procs, sequential_count)
    p50, p99 = percentile(seq, 0.5), percentile(seq, 0.99)
    chord_p50 = percentile(chord_seconds, 0.5)
    rate = len(ids) / outcome["span"] if outcome["span"] else 0.0
    all_exact = outcome["exact"] == len(ids)
    return [
        Row(BENCH, f"10-item batch, POST to final, p50 ({len(seq)} sequential)",
            f"{p50 * 1000:.1f} ms", "<= 50 ms", p50 <= 0.050),
        Row(BENCH, f"10-item batch, POST to final, p99 ({len(seq)} sequential)",
            f"{p99 * 1000:.1f} ms", "<= 200 ms", p99 <= 0.200),
        Row(BENCH, "10-item batch, POST to final, mean / max",
            f"{statistics.mean(seq) * 1000:.1f} / {max(seq) * 1000:.1f} ms"),
        Row(BENCH, f"{len(ids):,} batches from {clients} clients: final and exact",
            f"{outcome['exact']:,} of {len(ids):,}", "all", all_exact),
        Row(BENCH, f"{len(ids):,} batches from {clients} clients: batches/s "
                   "(first POST to all final, on the database clock)",
            f"{rate:,.0f} ({posting:.1f} s to post)"),
        Row(BENCH, f"Celery chord of 10 tasks + callback, p50 / p99 ({len(chord_seconds)})",
            f"{chord_p50 * 1000:.1f} / {percentile(chord_seconds, 0.99) * 1000:.1f} ms"),
        Row(BENCH, "batchq p50 / chord p50", f"{p50 / chord_p50:.2f}x", "<= 1.0x",
            p50 <= chord_p50),
        Row(BENCH, "load average (start / end)", f"{load_start} / {tp.load()}"),
    ]


def run(quick: bool) -> list[Row]:
    """The benchmark's rows (``bench/run_all.py``); ``quick``: fewer batches."""
    if quick:
        return measure(50, 20, 400)
    return measure(200, 20, 2000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sequential", type=int, help="sequential batches (default 200)")
    parser.add_argument("--batches", type=int, help="concurrent batches (default 2000)")
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args(argv)
    sequential_count = args.sequential or (50 if args.quick else 200)
    batches = args.batches or (400 if args.quick else 2000)
    rows = measure(sequential_count, args.clients, batches)
    print_rows("batchq small-batch latency (PostgreSQL + Redis, 2 worker processes)", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
