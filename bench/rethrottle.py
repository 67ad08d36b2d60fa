"""The rate a rethrottled batch holds: 500 items/s, then 2,000 items/s, on two workers.

    .venv/bin/python -m bench.rethrottle                    # 10 s per rate
    .venv/bin/python -m bench.rethrottle --seconds 4        # quick
    .venv/bin/python -m bench.rethrottle --rates 100 400    # other rates

It drops and recreates the database ``batchq_bench_rethrottle``, empties Redis
db 13, and touches nothing else. Two ``celery worker`` nodes of one pool
process each (``--workers``, ``--concurrency``) run one ``noop`` batch created
with the first rate as its ``maxItemsPerSecond``; for each rate in turn the
batch is rethrottled while it runs (``batchq.service.control.change_batch``,
the call behind ``PATCH /batches/{id}``), given ``--settle`` seconds, and its
processed items are counted over ``--seconds``. It prints each rate held and
how far it is from the one set (the issue asks for 10%). The batch is
cancelled at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import redis
import sqlalchemy as sa

from batchq.runtime import build_runtime
from batchq.service import control
from batchq.service.creation import NewBatch, create_batch
from batchq.settings import Settings
from batchq.storage.engine import create_engine
from batchq.storage.migrate import upgrade
from bench.rows import Row, print_rows
from bench.throughput import Processes, celery_worker, subprocess_env, wait_until
from workers.app import CeleryDispatcher, create_celery

SERVER = "postgresql://postgres@127.0.0.1:5432"
DATABASE = "batchq_bench_rethrottle"
BROKER_URL = os.environ.get("BENCH_RETHROTTLE_BROKER_URL", "redis://127.0.0.1:6379/13")


def reset() -> str:
    with create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{DATABASE}"'))
    redis.Redis.from_url(BROKER_URL).flushdb()
    url = f"{SERVER}/{DATABASE}"
    upgrade(url)
    return url


def held_rate(rt: object, batch_id: str, seconds: float) -> float:
    """Items processed per second over ``seconds``, read off the batch's counter."""
    storage = rt.storage  # type: ignore[attr-defined]
    first = storage.batches.get(batch_id)["processed_items"]
    started = time.monotonic()
    time.sleep(seconds)
    last = storage.batches.get(batch_id)["processed_items"]
    return float(last - first) / (time.monotonic() - started)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[500.0, 2000.0])
    parser.add_argument("--seconds", type=float, default=10.0, help="counting time per rate")
    parser.add_argument("--settle", type=float, default=2.0, help="wait after each change")
    parser.add_argument("--workers", type=int, default=2, help="celery worker nodes")
    parser.add_argument("--concurrency", type=int, default=1, help="pool processes per node")
    parser.add_argument("--page-size", type=int, default=50)
    parser.add_argument("--items", type=int, default=0,
                        help="the batch's items (default: enough for every rate's time)")
    return parser.parse_args(argv)


def figures(args: argparse.Namespace) -> list[Row]:
    """The rate a batch holds after each rethrottle, against the rate set."""
    url = reset()
    needed = args.items or min(1_000_000, int(sum(args.rates) * (args.seconds + args.settle)
                                              * 1.5) + 10_000)
    rows = []
    with tempfile.TemporaryDirectory() as folder, Processes(Path(folder)) as procs:
        settings = Settings(data_dir=Path(folder) / "data", database_url=url,
                            broker_url=BROKER_URL)
        env = {**subprocess_env(), "BATCHQ_DATABASE_URL": url, "BATCHQ_BROKER_URL": BROKER_URL,
               "BATCHQ_DATA_DIR": str(settings.data_dir)}
        workers = [procs.spawn(f"w{n}", celery_worker("workers.app", "batchq", f"w{n}",
                                                      args.concurrency), env)
                   for n in range(args.workers)]
        procs.spawn("beat", [sys.executable, "-m", "celery", "-A", "workers.app", "beat",
                             "--loglevel", "WARNING", "--schedule",
                             str(Path(folder) / "beat-schedule")], env)
        rt = build_runtime(settings, CeleryDispatcher(create_celery(settings)))
        batch = create_batch(rt, NewBatch(type="noop", page_size=args.page_size,
                                          max_items_per_second=args.rates[0]),
                             ({"n": n} for n in range(needed)))
        wait_until(lambda: rt.storage.batches.get(batch["id"])["processed_items"] > 0, 120,
                   "the batch to start", workers[0])
        for rate in args.rates:
            control.change_batch(rt, batch["id"], {"max_items_per_second": rate})
            time.sleep(args.settle)
            held = held_rate(rt, batch["id"], args.seconds)
            off = 100 * (held - rate) / rate
            rows.append(Row("rethrottle", f"maxItemsPerSecond {rate:.0f} ({args.workers} "
                                          f"workers x {args.concurrency}): held",
                            f"{held:.0f}/s ({off:+.1f}%)"))
        control.cancel_batch(rt, batch["id"])
        rt.storage.dispose()
    return rows


def run(quick: bool) -> list[Row]:
    """The benchmark's rows (``bench/run_all.py``); ``quick``: 5 s per rate."""
    return figures(parse_args(["--seconds", "5"] if quick else []))


def main() -> None:
    print_rows("The rate a rethrottled batch holds", figures(parse_args()))


if __name__ == "__main__":
    main()
