"""A 10,000,000-item batch: posted as NDJSON, processed, read back; memory and items/s at 1M
and at 10M.

Run from the project root::

    .venv/bin/python -m bench.large            # 1,000,000 then 10,000,000 items
    .venv/bin/python -m bench.large --quick    # 100,000 then 1,000,000 items

For each size, on a fresh ``batchq_bench`` database (Redis db 14; ``BENCH_DB_NAME`` and
``BENCH_BROKER_URL`` choose others), the API under gunicorn (1 worker process), a worker
node of 2 pool processes and beat are started with ``BATCHQ_MAX_ITEMS`` raised to the size.
One ``echo`` batch is streamed as chunked NDJSON (one item in 1,000 fails, with one of
seven messages; no failure threshold), polled until final, then read back: the first and
the last window of ``/items`` and ``/errors/summary``. The peak RSS of every process is
sampled all along (targets: the API's under 200 MB, each worker's under 150 MB), and
items/s at the large size must be at least 90% of items/s at the small one.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench import throughput as tp
from bench.rows import Row, print_rows

BENCH = "large"
MB = 1024 * 1024
CHUNK_ITEMS = 10_000


def ndjson(count: int) -> Iterator[bytes]:
    """The items as NDJSON lines, ``CHUNK_ITEMS`` to a chunk; one in 1,000 fails."""
    for start in range(0, count, CHUNK_ITEMS):
        yield b"".join(
            b'{"fail":"boom %d"}\n' % (n % 7) if n % 1000 == 999 else b'{"n":%d}\n' % n
            for n in range(start, min(start + CHUNK_ITEMS, count)))


@dataclass
class Run:
    items: int
    post_seconds: float
    post_to_final_seconds: float
    processing_seconds: float
    api_peak_mb: float
    worker_peak_mb: float
    reads_ms: dict[str, float]
    batch: dict[str, Any]

    @property
    def rate(self) -> float:
        """Items/s from the POST's start to the final status: creation and processing."""
        return self.items / self.post_to_final_seconds


def post(port: int, count: int, timeout: float) -> tuple[dict[str, Any], float]:
    query = urlencode({"type": "echo", "pageSize": 100, "failureThreshold": "null"})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.perf_counter()
    try:
        conn.request("POST", f"/batches?{query}", body=ndjson(count), encode_chunked=True,
                     headers={"Authorization": f"Bearer {tp._token}",
                              "Content-Type": "application/x-ndjson",
                              "Transfer-Encoding": "chunked"})
        response = conn.getresponse()
        data = json.loads(response.read() or b"null")
    finally:
        conn.close()
    if response.status != 201:
        raise RuntimeError(f"POST /batches answered {response.status}: {str(data)[:2000]}")
    return data, time.perf_counter() - started


def read_back(port: int, batch: dict[str, Any]) -> dict[str, float]:
    """Milliseconds of the first and last window of /items and of /errors/summary."""
    batch_id, total = batch["id"], batch["totalItems"]
    reads = {"items, first window": f"/batches/{batch_id}/items?maxResults=100",
             "items, last window": f"/batches/{batch_id}/items?maxResults=100"
                                   f"&afterIndex={total - 101}",
             "errors/summary": f"/batches/{batch_id}/errors/summary"}
    timings = {}
    for name, path in reads.items():
        started = time.perf_counter()
        status, body = tp.http_json(port, "GET", path, timeout=120)
        timings[name] = (time.perf_counter() - started) * 1000
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body}")
        if name == "items, last window" and body["items"][-1]["index"] != total - 1:
            raise RuntimeError(f"the last window does not end with item {total - 1}")
    return timings


def one_size(items: int, timeout: float) -> Run:
    with tempfile.TemporaryDirectory(prefix="batchq-large-") as tmp, \
            tp.Processes(Path(tmp)) as procs, tp.log_tails_on_error(Path(tmp)):
        workdir = Path(tmp)
        tp.reset_storage()
        data_dir = workdir / "batchq-data"
        data_dir.mkdir()
        env = {**tp.batchq_env(data_dir), "BATCHQ_MAX_ITEMS": str(items)}
        port = tp.free_port()
        api = procs.spawn("api", [sys.executable, "-m", "gunicorn", "--bind",
                                  f"127.0.0.1:{port}", "--workers", "1", "--timeout",
                                  str(int(timeout)), "api:create_app()"], env)
        worker = procs.spawn("worker", tp.celery_worker("workers.app", "batchq",
                                                        "bench-large", 2), env)
        procs.spawn("beat", [sys.executable, "-m", "celery", "-A", "workers.app", "beat",
                             "--loglevel", "WARNING", "--schedule",
                             str(workdir / "beat-schedule")], env)
        tp.wait_until(lambda: tp._healthy(port), 60, "the API's /healthz", api)
        os.environ.update({k: v for k, v in env.items() if k.startswith("BATCHQ_")})
        from workers.app import create_celery

        tp.wait_worker_ready(create_celery(), "bench-large", worker, 2)
        sampler = tp.RssSampler({"api": api, "worker": worker})
        sampler.start()
        try:
            started = time.perf_counter()
            created, post_seconds = post(port, items, timeout)
            batch = tp._poll_until_final(port, created["id"], api, worker, timeout)
            post_to_final = time.perf_counter() - started
            reads = read_back(port, batch)
        finally:
            sampler.stop()
    if (batch["status"], batch["processedItems"], batch["failedItems"]) != (
            "CompletedWithErrors", items, items // 1000):
        raise RuntimeError(f"the batch ended {batch['status']}, {batch['processedItems']} "
                           f"processed, {batch['failedItems']} failed")
    processing = (tp.parse_utc(batch["finishedAt"]) - tp.parse_utc(batch["startedAt"]))
    return Run(items, post_seconds, post_to_final, processing.total_seconds(),
               sampler.peaks["api"].largest / MB, sampler.peaks["worker"].largest / MB,
               reads, batch)


def measure(small: int, large: int, timeout: float) -> list[Row]:
    load_start = tp.load()
    runs = [one_size(small, timeout), one_size(large, timeout)]
    rows = []
    for run in runs:
        label = f"{run.items:,} items"
        rows += [
            Row(BENCH, f"{label}: items/s, POST start to final (POST {run.post_seconds:.1f} s, "
                       f"processing {run.processing_seconds:.1f} s)", f"{run.rate:,.0f}"),
            Row(BENCH, f"{label}: peak RSS of the API process", f"{run.api_peak_mb:.0f} MB",
                "< 200 MB", run.api_peak_mb < 200),
            Row(BENCH, f"{label}: peak RSS of the largest worker process",
                f"{run.worker_peak_mb:.0f} MB", "< 150 MB", run.worker_peak_mb < 150),
            Row(BENCH, f"{label}: read back (first / last /items window, /errors/summary)",
                " / ".join(f"{ms:.0f}" for ms in run.reads_ms.values()) + " ms"),
        ]
    share = runs[1].rate / runs[0].rate
    rows.append(Row(BENCH, f"items/s at {runs[1].items:,} / at {runs[0].items:,}",
                    f"{share:.0%}", ">= 90%", share >= 0.9))
    rows.append(Row(BENCH, "load average (start / end)", f"{load_start} / {tp.load()}"))
    return rows


def run(quick: bool) -> list[Row]:
    """The benchmark's rows (``bench/run_all.py``); ``quick``: 100,000 and 1,000,000 items."""
    return measure(100_000, 1_000_000, 3600) if quick else measure(1_000_000, 10_000_000, 7200)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", type=int, nargs=2, metavar=("SMALL", "LARGE"))
    parser.add_argument("--timeout", type=float, default=7200)
    args = parser.parse_args(argv)
    small, large = args.sizes or ((100_000, 1_000_000) if args.quick
                                  else (1_000_000, 10_000_000))
    print_rows("A 10M-item batch: memory and items/s", measure(small, large, args.timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
