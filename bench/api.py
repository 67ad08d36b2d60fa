"""The API under load: read latency with 100,000 batches, and streaming 1,000,000 items in.

Run from the project root::

    .venv/bin/python -m bench.api                                    # full size
    .venv/bin/python -m bench.api --batches 10000 --items 100000     # a quick run

1. A fresh ``batchq_bench`` database (Redis db 14) gets ``--batches`` finished
   batches in one ``INSERT ... SELECT`` over ``generate_series``, spread over 20
   tenants, 5 types, 6 final statuses and 200 creators, and three users: a
   system user, a tenant admin (``ADMIN_BATCHES`` of one tenant) and a view-all
   admin (``ADMIN_BATCHES`` + ``ADMIN_VIEW_ALL_ORGANISATIONS``).
2. API (gunicorn, ``--api-workers``), a Celery worker (``--concurrency``) and
   beat start as real processes.
3. Raw COPY: ``--items`` item rows go into ``items`` by ``COPY ... FROM STDIN``
   over psycopg2, in one transaction that is rolled back (then ``VACUUM``):
   the database's own rate for exactly these rows, on the same table and
   indexes.
4. Upload: the same items, posted to ``POST /batches`` as NDJSON by a client
   that streams them from a generator (chunked transfer encoding), as one
   ``noop`` batch; the gunicorn process tree's RSS is sampled every 50 ms.
5. Latency: while the workers process that batch, one client sends, in turn,
   ``GET /batches/{id}`` for a random batch, and ``GET /batches?status=&type=
   &sortBy=createdAt&sortOrder=desc&maxResults=50`` as the tenant admin and as
   the view-all admin; only requests that ended while the batch was still
   active count. Then the list query's PostgreSQL plan is printed.

Targets: p99 <= 10 ms (one batch), <= 50 ms (a list page); upload >= 0.5x the
COPY rate; API peak RSS < 200 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psutil
import psycopg2

from bench.rows import Row
from bench.throughput import (
    ACTIVE,
    DATABASE_URL,
    DB_NAME,
    MB,
    PG_HOST,
    PG_PORT,
    PG_USER,
    Proc,
    Processes,
    batchq_env,
    celery_worker,
    free_port,
    load,
    log_tails_on_error,
    print_table,
    reset_storage,
    wait_until,
    wait_worker_ready,
)

TENANTS, TYPES, CREATORS = 20, ("noop", "echo", "http", "import-customers", "report"), 200
FINAL = ("Completed", "CompletedWithErrors", "Cancelled", "TooManyFailed", "Failed",
         "PostBatchFailed")
#: What the list requests ask for: a status and a type that match ~14% and ~20% of batches.
LIST_FILTER = {"status": "Completed", "type": "echo", "sortBy": "createdAt",
               "sortOrder": "desc", "maxResults": "50"}
ADMIN_TENANT = "tenant-3"
LINES_PER_CHUNK = 2000


# -- the database --------------------------------------------------------------------------


def pg_connect() -> Any:
    return psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=DB_NAME)


def insert_batches(count: int) -> float:
    """``count`` finished batches, spread over tenants, types, statuses and creators."""
    statuses = "ARRAY[" + ", ".join(f"'{s}'" for s in FINAL) + "]"
    types = "ARRAY[" + ", ".join(f"'{t}'" for t in TYPES) + "]"
    # Independent random draws (seeded: every run gets the same batches), so that
    # tenant, type, status and creator are not correlated as g's remainders would be.
    pick = "1 + floor(random() * {})::int"
    sql = f"""
        INSERT INTO batches (id, type, status, suspended, tenant_id, create_user_id, params,
            total_items, processed_items, failed_items, total_jobs, jobs_created,
            jobs_completed, page_size, jobs_per_seed, stage_sizes, retention_days,
            created_at, started_at, finished_at, expires_at)
        SELECT '00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'),
            ({types})[{pick.format(len(TYPES))}],
            ({statuses})[{pick.format(len(FINAL))}],
            false,
            CASE WHEN random() < 0.02 THEN NULL ELSE 'tenant-' || floor(random() * {TENANTS}) END,
            'user-' || floor(random() * {CREATORS}), '{{}}', 100, 100, g % 3, 1, 1, 1, 100, 100,
            '[[0, 100]]', 30,
            now() - g * interval '30 seconds', now() - g * interval '30 seconds',
            now() - g * interval '30 seconds' + interval '5 seconds',
            now() + interval '365 days'
        FROM generate_series(1, {int(count)}) AS g"""
    t0 = time.monotonic()
    conn = pg_connect()
    try:
        with conn, conn.cursor() as cursor:
            cursor.execute("SELECT setseed(0.42)")
            cursor.execute(sql)
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE batches")
    finally:
        conn.close()
    return time.monotonic() - t0


def create_users() -> dict[str, str]:
    """Tokens of the system user, the tenant admin and the view-all admin."""
    from batchq.domain.permissions import Function
    from batchq.service.users import NewUser, create_user
    from batchq.storage.engine import create_engine
    from batchq.storage.users import UserRepository

    engine = create_engine(DATABASE_URL)
    try:
        return {
            "system": create_user(UserRepository(engine), NewUser("bench-system", is_system=True)),
            "tenant admin": create_user(UserRepository(engine), NewUser(
                "bench-tenant-admin", ADMIN_TENANT, (Function.ADMIN_BATCHES,))),
            "view-all admin": create_user(UserRepository(engine), NewUser(
                "bench-view-all", "tenant-0",
                (Function.ADMIN_BATCHES, Function.ADMIN_VIEW_ALL_ORGANISATIONS))),
        }
    finally:
        engine.dispose()


def ndjson_lines(count: int) -> Iterator[bytes]:
    """The upload's body, ``LINES_PER_CHUNK`` bare payloads ``{"n": i}`` at a time."""
    for start in range(0, count, LINES_PER_CHUNK):
        stop = min(start + LINES_PER_CHUNK, count)
        yield b"".join(b'{"n":%d}\n' % n for n in range(start, stop))


class _CsvRows(io.RawIOBase):
    """The COPY input: the item rows batchq would write for the upload, made as read."""

    def __init__(self, batch_id: str, count: int) -> None:
        self.lines = (b"".join(b'%s,0,%d,%d,%d,"{""n"":%d}"\n' % (batch_id.encode(), n, n, n, n)
                               for n in range(start, min(start + LINES_PER_CHUNK, count)))
                      for start in range(0, count, LINES_PER_CHUNK))
        self.pending = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while len(self.pending) < max(size, 1):
            block = next(self.lines, b"")
            if not block:
                break
            self.pending += block
        data, self.pending = self.pending[:size], self.pending[size:]
        return data


def raw_copy(count: int) -> float:
    """Seconds to COPY ``count`` item rows into ``items`` (rolled back afterwards).

    Then ``VACUUM items``: the rolled-back rows stay in the table and its two
    indexes as dead entries until vacuumed, and inserting among them made the
    upload after it a third slower than on the clean table the COPY had.
    """
    conn = pg_connect()
    try:
        with conn.cursor() as cursor:
            t0 = time.monotonic()
            cursor.copy_expert(
                "COPY items (batch_id, stage, pos, seq, key, payload) FROM STDIN "
                "WITH (FORMAT csv)", _CsvRows("raw-copy-bench", count), size=64 * 1024)
            seconds = time.monotonic() - t0
        conn.rollback()
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("VACUUM items")
    finally:
        conn.close()
    return seconds


def list_plan(token_user: str, view_all: bool) -> str:
    """EXPLAIN ANALYZE of the list page as ``token_user`` sees it (its SQL from batchq)."""
    from batchq.domain.lists import BatchFilter, BatchOrder, Window
    from batchq.domain.permissions import Caller, Function, read_scope
    from batchq.storage.batches import list_query

    functions = frozenset({Function.ADMIN_BATCHES} | (
        {Function.ADMIN_VIEW_ALL_ORGANISATIONS} if view_all else set()))
    caller = Caller(name=token_user, tenant_id="tenant-0" if view_all else ADMIN_TENANT,
                    functions=functions, is_system=False)
    query = list_query(read_scope(caller),
                       BatchFilter(status=LIST_FILTER["status"], type=LIST_FILTER["type"]),
                       BatchOrder(sort_by="createdAt", descending=True), Window(0, 50))
    from sqlalchemy.dialects import postgresql

    sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    conn = pg_connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql)
            return "\n".join(row[0] for row in cursor.fetchall())
    finally:
        conn.close()


# -- HTTP ---------------------------------------------------------------------------------


def call(port: int, path: str, token: str, method: str = "GET") -> tuple[int, Any, float]:
    """(status, JSON body, seconds from connecting to the last byte)."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return response.status, json.loads(data) if data else None, time.perf_counter() - t0


def post_ndjson(port: int, token: str, count: int, page_size: int,
                timeout: float) -> tuple[int, Any, float]:
    """POST ``count`` items as a chunked NDJSON stream; (status, body, seconds)."""
    query = urlencode({"type": "noop", "pageSize": page_size, "description": "bench upload"})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.perf_counter()
    try:
        conn.request("POST", f"/batches?{query}", body=ndjson_lines(count), encode_chunked=True,
                     headers={"Authorization": f"Bearer {token}",
                              "Content-Type": "application/x-ndjson",
                              "Transfer-Encoding": "chunked"})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return response.status, json.loads(data) if data else None, time.perf_counter() - t0


# -- the runs -------------------------------------------------------------------------------


class FastRss(threading.Thread):
    """The peak RSS of a process tree, sampled every 50 ms while running.

    The tree is listed once: listing it walks every process of the machine,
    which at 20 Hz took a third of a core from the client it runs in.
    """

    def __init__(self, proc: Proc) -> None:
        super().__init__(daemon=True)
        self.processes = proc.tree()
        self.peak = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            total = 0
            for process in self.processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += process.memory_info().rss
            self.peak = max(self.peak, total)
            self.stopped.wait(0.05)

    def stop(self) -> int:
        self.stopped.set()
        self.join(timeout=5)
        return self.peak


@dataclass
class Latencies:
    samples: dict[str, list[float]] = field(default_factory=dict)
    after_final: int = 0  # requests that ended after the batch finished, not counted


def measure_latency(port: int, tokens: dict[str, str], batches: int, timeout: float,
                    batch_id: str | None = None, rounds: int = 300) -> Latencies:
    """Round-robin reads: while ``batch_id`` is active, or else ``rounds`` times (idle).

    The batch's status is read every 20 rounds, not timed; the rounds since the
    last read count only once a read shows it still active (statuses only ever
    go from active to final), so every counted request ended while it ran.
    """
    list_path = "/batches?" + urlencode(LIST_FILTER)
    kinds = {
        "GET /batches/{id} (view-all admin)": lambda: (
            f"/batches/00000000-0000-4000-8000-{random.randint(1, batches):012x}",
            tokens["view-all admin"]),
        "GET /batches filtered+sorted (tenant admin)": lambda: (list_path, tokens["tenant admin"]),
        "GET /batches filtered+sorted (view-all admin)": lambda: (
            list_path, tokens["view-all admin"]),
    }
    result = Latencies({name: [] for name in kinds})
    unconfirmed: list[tuple[str, float]] = []
    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline and (batch_id is not None or done < rounds):
        for name, make in kinds.items():
            path, token = make()
            status, body, seconds = call(port, path, token)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}: {str(body)[:500]}")
            unconfirmed.append((name, seconds))
        done += 1
        if batch_id is None or done % 20 == 0:
            if batch_id is not None:
                _, batch, _ = call(port, f"/batches/{batch_id}", tokens["system"])
                if batch["status"] not in ACTIVE:
                    result.after_final = len(unconfirmed)
                    return result
            for name, seconds in unconfirmed:
                result.samples[name].append(seconds)
            unconfirmed.clear()
    return result


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure_all(args: argparse.Namespace, procs: Processes, workdir: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    print(f"Inserting {args.batches:,} batches", flush=True)
    figures["insert batches s"] = insert_batches(args.batches)
    tokens = create_users()
    data_dir = workdir / "batchq-data"
    data_dir.mkdir()
    env = batchq_env(data_dir)
    port = free_port()
    api = procs.spawn("api", [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers",
        str(args.api_workers), "--timeout", "900", "api:create_app()"], env)
    worker = procs.spawn("batchq-worker", celery_worker(
        "workers.app", "batchq", "bench-api", args.concurrency), env)
    procs.spawn("beat", [sys.executable, "-m", "celery", "-A", "workers.app", "beat",
                         "--loglevel", "WARNING", "--schedule", str(workdir / "beat")], env)
    wait_until(lambda: _healthy(port), 60, "the API's /healthz", api)
    os.environ.update({k: v for k, v in env.items() if k.startswith("BATCHQ_")})
    from workers.app import create_celery

    wait_worker_ready(create_celery(), "bench-api", worker, args.concurrency)
    for _ in range(20):  # warm every gunicorn worker's connection pool
        call(port, "/batches?maxResults=1", tokens["system"])

    print("Latency, idle (no batch running)", flush=True)
    figures["idle latency"] = measure_latency(port, tokens, args.batches, args.timeout,
                                              rounds=args.idle_rounds)

    print(f"Raw COPY of {args.items:,} item rows (rolled back)", flush=True)
    figures["copy s"] = raw_copy(args.items)
    print(f"  {figures['copy s']:.2f} s", flush=True)

    print(f"POST /batches: {args.items:,} items as a streamed NDJSON body", flush=True)
    figures["api rss before MB"] = api.rss()[0] / MB
    sampler = FastRss(api)
    sampler.start()
    try:
        status, batch, seconds = post_ndjson(port, tokens["system"], args.items,
                                             args.page_size, args.timeout)
    finally:
        figures["api rss peak MB"] = sampler.stop() / MB
    if status != 201:
        raise RuntimeError(f"POST answered {status}: {str(batch)[:2000]}")
    figures["upload s"] = seconds
    print(f"  batch {batch['id']} created in {seconds:.2f} s", flush=True)

    print("Latency while the workers process it", flush=True)
    t0 = time.monotonic()
    figures["latency"] = measure_latency(port, tokens, args.batches, args.timeout, batch["id"])
    figures["latency s"] = time.monotonic() - t0
    final = _wait_final(port, tokens["system"], batch["id"], args.timeout)
    figures["final"] = final
    figures["plans"] = {who: list_plan(user, view_all) for who, user, view_all in (
        ("tenant admin", "bench-tenant-admin", False),
        ("view-all admin", "bench-view-all", True))}
    return figures


def _healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False


def _wait_final(port: int, token: str, batch_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, batch, _ = call(port, f"/batches/{batch_id}", token)
        if batch["status"] not in ACTIVE:
            return dict(batch)
        time.sleep(0.5)
    raise RuntimeError(f"batch {batch_id} not final after {timeout:g} s")


def summary_rows(args: argparse.Namespace, figures: dict[str, Any]) -> list[tuple[str, str]]:
    rate = args.items / figures["upload s"]
    copy_rate = args.items / figures["copy s"]
    final = figures["final"]
    rows = [
        ("batches in the database / cpus", f"{args.batches:,} / {os.cpu_count()}"),
        ("inserting them (SQL) + VACUUM ANALYZE", f"{figures['insert batches s']:.2f} s"),
        ("raw COPY of the item rows", f"{figures['copy s']:.2f} s, {copy_rate:,.0f} rows/s"),
        ("POST /batches, NDJSON streamed", f"{figures['upload s']:.2f} s, {rate:,.0f} items/s"),
        ("upload rate / COPY rate",
         f"{rate / copy_rate:.2f}x  {'OK' if rate / copy_rate >= 0.5 else 'BELOW'} target 0.5x"),
        ("API RSS (gunicorn tree) before / peak",
         f"{figures['api rss before MB']:.1f} MB / {figures['api rss peak MB']:.1f} MB  "
         f"({args.api_workers} workers + arbiter; "
         f"{'OK' if figures['api rss peak MB'] < 200 else 'ABOVE'} target 200 MB)"),
        ("latency phase", f"{figures['latency s']:.1f} s, until the batch finished"),
    ]
    for phase, key in (("while processing", "latency"), ("idle", "idle latency")):
        rows.append((f"-- latency {phase}", ""))
        latency: Latencies = figures[key]
        for name, samples in latency.samples.items():
            rows.append((name, _latency_row(name, samples)))
    rows += [
        ("upload batch, final", f"{final['status']}, processed {final['processedItems']:,}, "
                                f"failed {final['failedItems']}, jobs {final['progress']}"),
        ("load average at the end", load()),
    ]
    return rows


def print_summary(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    print_table("batchq API benchmark (PostgreSQL + Redis, gunicorn)",
                summary_rows(args, figures), rule_extra=60)
    for who, plan in figures["plans"].items():
        print(f"\nPlan of the list page as the {who}:\n{plan}")
    sys.stdout.flush()


def _latency_row(name: str, samples: list[float]) -> str:
    if not samples:
        return "no sample"
    target = 0.010 if "{id}" in name else 0.050
    p50, p99 = percentile(samples, 0.50), percentile(samples, 0.99)
    return (f"p50 {p50 * 1000:6.1f} ms  p99 {p99 * 1000:6.1f} ms  max {max(samples) * 1000:6.1f} "
            f"ms  n={len(samples)}  mean {statistics.mean(samples) * 1000:.1f} ms  "
            f"{'OK' if p99 <= target else 'ABOVE'} target p99 {target * 1000:.0f} ms")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes")
    parser.add_argument("--api-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--idle-rounds", type=int, default=300,
                        help="rounds of the three reads before the upload, nothing running")
    parser.add_argument("--timeout", type=float, default=1800, help="give up on a step after")
    return parser.parse_args(argv)


def figures_of(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="batchq-bench-api-") as tmp:
        workdir = Path(tmp)
        with Processes(workdir) as procs, log_tails_on_error(workdir):
            reset_storage()
            return measure_all(args, procs, workdir)


def run(quick: bool) -> list[Row]:
    """The benchmark's rows (``bench/run_all.py``); ``quick``: 10,000 batches, 100,000 items."""
    argv = ["--batches", "10000", "--items", "100000", "--idle-rounds", "50"]
    args = parse_args(argv if quick else [])
    return [Row("api", label, value) for label, value in summary_rows(args, figures_of(args))
            if value]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="batchq-bench-api-") as tmp:
        workdir = Path(tmp)
        with log_tails_on_error(workdir), Processes(workdir) as procs:
            print("Resetting database batchq_bench and Redis db 14", flush=True)
            reset_storage()
            figures = measure_all(args, procs, workdir)
    print_summary(args, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
