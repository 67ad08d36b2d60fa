"""What PostgreSQL pays per 1,000 items: the figures of docs/scaling.md.

Run from the project root::

    .venv/bin/python -m bench.scaling            # 1,000,000 items
    .venv/bin/python -m bench.scaling --quick    # 100,000 items

It starts a PostgreSQL cluster of its own (``initdb`` in a temporary folder, on a free
port), so the shared server's other databases add nothing to the WAL it measures, and 8
worker processes (one Celery node, ``--concurrency 8``) on Redis (``BENCH_BROKER_URL``,
default db 14). One ``noop`` batch of pages of 100 is created (in the bench process, as
the API would) and run to its final status. For creation and for processing apart:

- transactions: ``xact_commit`` of ``pg_stat_database`` (the workers are stopped before
  the last read, so their backends have flushed their statistics);
- rows written: ``tup_inserted + tup_updated + tup_deleted``;
- WAL bytes: the difference of ``pg_current_wal_lsn()``;
- lock waits: ``pg_locks`` sampled every 20 ms while the pages run: the share of samples
  with a backend waiting for a lock, and the most waiting at once.

It prints each per 1,000 items, and the ceiling they predict: the items/s of a
PostgreSQL that sustains N commits/s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from bench import throughput as tp
from bench.rows import Row, print_rows

BENCH = "scaling"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
WORKERS = 8
PAGE_SIZE = 100


@contextlib.contextmanager
def private_postgres(folder: Path) -> Iterator[int]:
    """A PostgreSQL cluster of this bench's own, on a free port; yields the port."""
    data = folder / "pgdata"
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder.chmod(0o777)
    subprocess.run([*run_as, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
    port = tp.free_port()
    subprocess.run([*run_as, str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l",
                    str(folder / "pg.log"), "-o",
                    f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 "
                    "-c max_connections=100 -c shared_buffers=256MB", "start"],
                   check=True, capture_output=True)
    try:
        yield port
    finally:
        subprocess.run([*run_as, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "stop"], check=False, capture_output=True)


@dataclass
class Counters:
    commits: int
    rows: int
    wal: int

    def __sub__(self, other: Counters) -> Counters:
        return Counters(self.commits - other.commits, self.rows - other.rows,
                        self.wal - other.wal)


def counters(dsn: str, database: str) -> Counters:
    """The database's commits and rows written, and the cluster's WAL position, now."""
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cursor:
        conn.autocommit = True
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("""SELECT xact_commit, tup_inserted + tup_updated + tup_deleted,
                                 pg_current_wal_lsn() - '0/0'::pg_lsn
                          FROM pg_stat_database WHERE datname = %s""", (database,))
        commits, written, wal = cursor.fetchone()
    return Counters(int(commits), int(written), int(wal))


class LockSampler(threading.Thread):
    """Samples ``pg_locks`` for backends waiting on a lock, every ``interval`` seconds."""

    def __init__(self, dsn: str, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.dsn, self.interval = dsn, interval
        self.samples = self.waiting_samples = self.most = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        with contextlib.closing(psycopg2.connect(self.dsn)) as conn, conn.cursor() as cursor:
            conn.autocommit = True
            while not self._stop_event.is_set():
                cursor.execute("SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted")
                waiting = int(cursor.fetchone()[0])
                self.samples += 1
                self.waiting_samples += waiting > 0
                self.most = max(self.most, waiting)
                self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def measure(items: int) -> list[Row]:
    load_start = tp.load()
    with tempfile.TemporaryDirectory(prefix="batchq-scaling-") as tmp:
        folder = Path(tmp)
        with private_postgres(folder) as port:
            return _measure(folder, port, items, load_start)


def _measure(folder: Path, port: int, items: int, load_start: str) -> list[Row]:
    admin = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    with contextlib.closing(psycopg2.connect(admin)) as conn:
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE batchq_scaling")
    url = f"postgresql://postgres@127.0.0.1:{port}/batchq_scaling"
    dsn = f"host=127.0.0.1 port={port} user=postgres dbname=batchq_scaling"
    from batchq.storage.migrate import upgrade

    upgrade(url)
    tp.empty_broker()
    data_dir = folder / "data"
    data_dir.mkdir()
    env = {**tp.batchq_env(data_dir), "BATCHQ_DATABASE_URL": url}
    os.environ.update({k: v for k, v in env.items() if k.startswith("BATCHQ_")})
    before = counters(dsn, "batchq_scaling")
    before.commits += 1  # this read's own commit
    started = time.monotonic()
    rt = _runtime(url)
    batch = _create(rt, items)  # before any worker runs: creation's cost alone
    rt.storage.dispose()  # its backend exits, and so flushes its statistics
    time.sleep(1.5)
    created = counters(dsn, "batchq_scaling")
    with tp.Processes(folder) as procs, tp.log_tails_on_error(folder):
        worker = procs.spawn("worker", tp.celery_worker("workers.app", "batchq",
                                                        "bench-scaling", WORKERS), env)
        sampler = LockSampler(admin)  # pg_locks is the cluster's: read from another database
        sampler.start()
        final, polls = _wait_final(dsn, batch, worker)
        seconds = time.monotonic() - started
        sampler.stop()
        procs.stop(worker)  # the backends exit, and so flush their statistics
        time.sleep(1.5)
        after = counters(dsn, "batchq_scaling")
        after.commits -= polls + 1  # the bench's own reads of the batch, and of the counters
    return _rows(items, created - before, after - created, sampler, final, seconds,
                 load_start)


def _runtime(url: str) -> object:
    from batchq.runtime import build_runtime
    from batchq.settings import Settings
    from workers.app import CeleryDispatcher, create_celery

    settings = Settings.from_env(database_url=url, max_active_batches_per_user=0)
    return build_runtime(settings, CeleryDispatcher(create_celery(settings)))


def _create(rt: object, items: int) -> str:
    from batchq.service.creation import NewBatch, create_batch

    batch = create_batch(rt, NewBatch(type="noop", page_size=PAGE_SIZE),  # type: ignore[arg-type]
                         ({"n": n} for n in range(items)))
    return str(batch["id"])


def _wait_final(dsn: str, batch_id: str, worker: tp.Proc) -> tuple[dict[str, object], int]:
    """The final batch, and how many reads (each a commit) it took to see it."""
    deadline = time.monotonic() + 3600
    polls = 0
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cursor:
        conn.autocommit = True
        while True:
            cursor.execute("SELECT status, processed_items FROM batches WHERE id = %s",
                           (batch_id,))
            status, processed = cursor.fetchone()
            polls += 1
            if status not in tp.ACTIVE:
                return {"status": status, "processed_items": processed}, polls
            if not worker.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"batch {batch_id} did not finish: {status}")
            time.sleep(0.2)


def _rows(items: int, creation: Counters, processing: Counters, locks: LockSampler,
          final: dict[str, object], seconds: float, load_start: str) -> list[Row]:
    per = 1000 / items
    rows = []
    for phase, found in (("creation", creation), ("processing", processing)):
        rows.append(Row(BENCH, f"{phase}: commits / rows written / WAL per 1,000 items",
                        f"{found.commits * per:.2f} / {found.rows * per:,.0f} / "
                        f"{found.wal * per / 1024:,.1f} KiB"))
    total = processing.commits + creation.commits
    rows += [
        Row(BENCH, f"{items:,} noop items, pages of {PAGE_SIZE}, {WORKERS} workers: "
                   "items/s (creation, worker start, processing)",
            f"{items / seconds:,.0f} ({final['status']}, {final['processed_items']:,} items)"),
        Row(BENCH, "lock waits while processing: samples with a waiter / most at once",
            f"{100 * locks.waiting_samples / max(1, locks.samples):.1f}% of "
            f"{locks.samples:,} / {locks.most}"),
    ]
    for commits_per_second in (2_000, 10_000, 50_000):
        ceiling = commits_per_second / (total * per) * 1000
        rows.append(Row(BENCH, f"predicted ceiling at {commits_per_second:,} commits/s",
                        f"{ceiling:,.0f} items/s"))
    wal_per_item = (creation.wal + processing.wal) / items
    for mb_per_second in (50, 200):
        rows.append(Row(BENCH, f"predicted ceiling at {mb_per_second} MB/s of WAL",
                        f"{mb_per_second * 1024 * 1024 / wal_per_item:,.0f} items/s"))
    rows.append(Row(BENCH, "load average (start / end)", f"{load_start} / {tp.load()}"))
    return rows


def run(quick: bool) -> list[Row]:
    """The benchmark's rows (``bench/run_all.py``); ``quick``: 100,000 items."""
    return measure(100_000 if quick else 1_000_000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--items", type=int)
    args = parser.parse_args(argv)
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        raise SystemExit(f"needs {PG_BIN}/initdb and runuser")
    rows = measure(args.items or (100_000 if args.quick else 1_000_000))
    print_rows("PostgreSQL cost per 1,000 items (a private cluster, 8 worker processes)", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
