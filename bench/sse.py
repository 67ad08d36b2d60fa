"""Live progress streams under load: open streams held, connections used, and the event
latency from a commit to the client.

Run from the project root::

    .venv/bin/python -m bench.sse                          # 200 streams, embedded (SQLite)
    .venv/bin/python -m bench.sse --streams 20 --updates 5  # a quick run
    .venv/bin/python -m bench.sse --database-url postgresql://postgres@127.0.0.1:5432/batchq_sse

1. A fresh database (SQLite in a temporary folder, or the PostgreSQL database
   named, which is dropped and recreated) gets ``--batches`` batches of 10 items
   and a system user; no worker runs, so the batches stay ``Waiting``.
2. The API runs as the Procfile serves it, under gunicorn's ``gthread`` worker
   (``--api-workers`` processes of ``--threads`` threads).
3. ``--streams`` clients, one thread each, open ``GET /batches/{id}/events``
   spread over the batches and wait for their first event.
4. ``--updates`` times, the bench commits one more processed item on every batch
   (an ``UPDATE`` as a page's commit does) and notes when it committed; each
   client notes when the event with that count arrived. Then every batch is
   completed and every stream must get its ``end`` event and close.

Reported: streams opened and held, the API's database connections while they
are open (TCP connections to PostgreSQL, or open handles of the SQLite file, of
the whole gunicorn process tree) and threads, and the latency p50/p99/max.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import sqlalchemy as sa

from batchq.service.creation import NewBatch, create_batch
from batchq.service.users import NewUser, create_user
from batchq.settings import Settings
from batchq.storage.engine import create_engine
from batchq.storage.migrate import upgrade
from batchq.storage.tables import batches
from bench.rows import Row

ROOT = Path(__file__).resolve().parents[1]


# -- the API under gunicorn gthread ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving_api(env: dict[str, str], workers: int, threads: int,
                log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """gunicorn ``gthread`` with ``workers`` x ``threads``; yields (base URL, process)."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--worker-class", "gthread",
               "--workers", str(workers), "--threads", str(threads),
               "--bind", f"127.0.0.1:{port}", "--timeout", "120", "api:create_app()"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)},
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, process, log)
        yield f"http://127.0.0.1:{port}", process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        process.wait(timeout=10)


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not listen within 60 s")


# -- clients --------------------------------------------------------------------------------


@dataclass
class StreamClient:
    """One client on its own thread: every event it got, with the time it arrived."""

    base_url: str
    token: str
    batch_id: str
    status: int | None = None
    events: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    closed: threading.Event = field(default_factory=threading.Event)
    first: threading.Event = field(default_factory=threading.Event)
    error: str | None = None

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        host, port = self.base_url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        try:
            connection.request("GET", f"/batches/{self.batch_id}/events",
                               headers={"Authorization": f"Bearer {self.token}"})
            response = connection.getresponse()
            self.status = response.status
            if response.status == 200:
                self._read(response)
        except OSError as exc:
            self.error = repr(exc)
        finally:
            connection.close()
            self.first.set()
            self.closed.set()

    def _read(self, response: http.client.HTTPResponse) -> None:
        name = ""
        while line := response.readline():
            text = line.decode().rstrip("\n")
            if text.startswith("event: "):
                name = text[len("event: "):]
            elif text.startswith("data: "):
                self.events.append((time.time(), name, json.loads(text[len("data: "):])))
                self.first.set()

    def arrival_of(self, processed: int) -> float | None:
        """When the first event showing ``processed`` items (or more) arrived."""
        return next((at for at, _name, data in self.events
                     if data["processedItems"] >= processed), None)


def open_streams(base_url: str, token: str, batch_ids: list[str], count: int,
                 timeout: float = 120) -> list[StreamClient]:
    """``count`` clients over ``batch_ids`` in turn, each holding its first event."""
    clients = [StreamClient(base_url, token, batch_ids[n % len(batch_ids)])
               for n in range(count)]
    for client in clients:
        client.start()
    deadline = time.monotonic() + timeout
    for client in clients:
        client.first.wait(max(0.0, deadline - time.monotonic()))
    return clients


# -- what the API holds ---------------------------------------------------------------------


def process_tree(pid: int) -> list[psutil.Process]:
    main = psutil.Process(pid)
    return [main, *main.children(recursive=True)]


def database_connections(pid: int, database_url: str) -> int:
    """The API's connections to its database: TCP to PostgreSQL, or handles of the file."""
    count = 0
    for process in process_tree(pid):
        with contextlib.suppress(psutil.Error):
            if database_url.startswith("sqlite"):
                database = sa.engine.make_url(database_url).database or ""
                count += sum(1 for f in process.open_files() if f.path == database)
            else:
                port = sa.engine.make_url(database_url).port or 5432
                count += sum(1 for c in process.net_connections("tcp")
                             if c.raddr and c.raddr.port == port)
    return count


def thread_count(pid: int) -> int:
    return sum(process.num_threads() for process in process_tree(pid))


# -- commits --------------------------------------------------------------------------------


def commit_progress(engine: sa.Engine, batch_ids: list[str]) -> float:
    """One more processed item on every batch, as a page's commit adds; returns when."""
    with engine.begin() as conn:
        conn.execute(sa.update(batches).where(batches.c.id.in_(batch_ids))
                     .values(processed_items=batches.c.processed_items + 1, status="Processing"))
    return time.time()


def complete_all(engine: sa.Engine, batch_ids: list[str]) -> None:
    """Every batch ends Completed (and each stream with its end event)."""
    with engine.begin() as conn:
        conn.execute(sa.update(batches).where(batches.c.id.in_(batch_ids))
                     .values(status="Completed", processed_items=batches.c.total_items,
                             finished_at=sa.func.current_timestamp()))


def latencies(clients: list[StreamClient], commits: list[tuple[int, float]]) -> list[float]:
    """Seconds from each commit to each client's event showing it."""
    found = []
    for processed, committed in commits:
        for client in clients:
            arrived = client.arrival_of(processed)
            if arrived is not None:
                found.append(arrived - committed)
    return found


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# -- the run --------------------------------------------------------------------------------


class _NoBroker:
    """The bench runs no worker: the messages batch creation sends are dropped."""

    def send_seed(self, batch_id: str) -> None: ...

    def send_execute(self, batch_id: str, page_no: int) -> None: ...

    def send_monitor(self, batch_id: str) -> None: ...

    def send_deliver(self, delivery_id: str) -> None: ...

    def backlog(self) -> int:
        return 0


def prepare(settings: Settings, batch_count: int) -> tuple[str, list[str]]:
    """A migrated database with ``batch_count`` waiting batches; (a token, their ids)."""
    from batchq.runtime import build_runtime

    upgrade(settings.database_url)
    rt = build_runtime(settings, _NoBroker())
    token = create_user(rt.storage.users, NewUser(f"sse-bench-{time.time_ns()}", is_system=True))
    ids = [str(create_batch(rt, NewBatch(type="noop"), [{"n": n} for n in range(10)])["id"])
           for _ in range(batch_count)]
    rt.storage.dispose()
    return token, ids


def measure(settings: Settings, streams: int, batch_count: int, updates: int, workers: int,
            threads: int, log: Path) -> dict[str, Any]:
    """The whole bench; returns its figures."""
    token, ids = prepare(settings, batch_count)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHQ_")}
    env.update(BATCHQ_DATABASE_URL=settings.database_url, BATCHQ_DATA_DIR=str(settings.data_dir),
               BATCHQ_SSE_MAX_STREAMS=str(streams), BATCHQ_SSE_MAX_STREAMS_PER_USER=str(streams),
               BATCHQ_SSE_POLL_SECONDS=str(settings.sse_poll_seconds))
    engine = create_engine(settings.database_url)
    with serving_api(env, workers, threads, log) as (url, api):
        started = time.monotonic()
        clients = open_streams(url, token, ids, streams)
        opened = time.monotonic() - started
        held = sum(1 for client in clients if client.status == 200 and not client.closed.is_set())
        connections, api_threads = database_connections(api.pid, settings.database_url), \
            thread_count(api.pid)
        time.sleep(2.0)  # the burst of opening requests is over: what the streams hold
        settled = database_connections(api.pid, settings.database_url)
        commits = []
        for n in range(1, updates + 1):
            commits.append((n, commit_progress(engine, ids)))
            # A random gap, so the commits fall at every phase of the hub's ticks.
            time.sleep(settings.sse_poll_seconds * (2 + random.random()))
        time.sleep(1.0)
        complete_all(engine, ids)
        ended = all(client.closed.wait(30) for client in clients)
    engine.dispose()
    waits = latencies(clients, commits)
    return {
        "streams": streams, "held": held, "opened_in_s": round(opened, 2),
        "db_connections_opening": connections, "db_connections_held": settled,
        "api_threads": api_threads, "events": len(waits),
        "expected_events": streams * updates,
        "latency_p50_ms": round(1000 * statistics.median(waits), 1) if waits else None,
        "latency_p99_ms": round(1000 * percentile(waits, 0.99), 1) if waits else None,
        "latency_max_ms": round(1000 * max(waits), 1) if waits else None,
        "all_ended": ended and all(c.events and c.events[-1][1] == "end" for c in clients),
        "refused": sum(1 for client in clients if client.status != 200),
    }


def _postgres_database(url: str) -> str:
    """Drop and recreate the database of ``url``."""
    target = sa.engine.make_url(url)
    admin = create_engine(target.set(database="postgres").render_as_string(hide_password=False),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    return url


def figures(streams: int = 200, batches: int = 20, updates: int = 10, api_workers: int = 1,
            threads: int = 0, poll: float = 0.5, database_url: str = "") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="batchq-sse-") as folder:
        url = _postgres_database(database_url) if database_url else ""
        settings = Settings(data_dir=Path(folder), database_url=url, sse_poll_seconds=poll)
        return measure(settings, streams, batches, updates, api_workers,
                       threads or streams + 8, Path(folder) / "gunicorn.log")


def run(quick: bool) -> list[Row]:
    """The benchmark's rows (``bench/run_all.py``), on SQLite; ``quick``: 5 updates."""
    found = figures(updates=5 if quick else 10)
    return [
        Row("sse", f"{found['streams']} streams held (embedded)", str(found["held"]),
            str(found["streams"]), found["held"] == found["streams"]),
        Row("sse", "database connections while opening / once held",
            f"{found['db_connections_opening']} / {found['db_connections_held']}"),
        Row("sse", "events received / expected",
            f"{found['events']} / {found['expected_events']}"),
        Row("sse", "commit to event, p50 / p99 / max",
            f"{found['latency_p50_ms']} / {found['latency_p99_ms']} / "
            f"{found['latency_max_ms']} ms"),
        Row("sse", "every stream ended with the final event", str(found["all_ended"]),
            "True", bool(found["all_ended"])),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--api-workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0,
                        help="gunicorn threads per worker (default: streams + 8)")
    parser.add_argument("--poll", type=float, default=0.5, help="BATCHQ_SSE_POLL_SECONDS")
    parser.add_argument("--database-url", default="",
                        help="PostgreSQL (dropped and recreated); default: SQLite in a temp dir")
    args = parser.parse_args()
    found = figures(args.streams, args.batches, args.updates, args.api_workers, args.threads,
                    args.poll, args.database_url)
    stack = "PostgreSQL" if args.database_url else "embedded (SQLite)"
    print(f"SSE on the {stack} stack: {json.dumps(found, indent=2)}")


if __name__ == "__main__":
    main()
