"""Throughput of batchq against plain Celery on PostgreSQL + Redis.

Run from the project root::

    .venv/bin/python -m bench.throughput                  # 1,000,000 items
    .venv/bin/python -m bench.throughput --items 100000   # a quick run

1. batchq: a fresh ``batchq_bench`` database and Redis db 14; the API under
   gunicorn, a Celery worker (prefork, ``--concurrency``) and beat as real
   processes. One ``noop`` batch is POSTed to the API and polled until final.
2. Plain Celery: the same items as tasks of ``--page-size`` payloads each
   (``bench/plain_celery.py``), on a worker of the same concurrency, after the
   batchq processes stopped.

It prints items/s for both, their ratio (target: batchq >= 0.8x plain), the
wall time from POST to final status, and the peak RSS of API and worker.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg2
import redis

from bench.rows import Row

ROOT = Path(__file__).resolve().parents[1]
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
# Another database or Redis db when benchmarks share a machine (BENCH_DB_NAME, BENCH_BROKER_URL).
DB_NAME = os.environ.get("BENCH_DB_NAME", "batchq_bench")
DATABASE_URL = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{DB_NAME}"
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
ACTIVE = {"Waiting", "Processing", "Cancelling"}
POLL_SECONDS = 0.5
MB = 1024 * 1024


# -- processes --------------------------------------------------------------------------


@dataclass
class Proc:
    """A process this benchmark started, in its own session so its tree stops with it."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tree(self) -> list[psutil.Process]:
        try:
            main = psutil.Process(self.popen.pid)
            return [main, *main.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss(self) -> tuple[int, int]:
        """(sum of RSS over the tree, largest single RSS) in bytes."""
        sizes = []
        for process in self.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                sizes.append(process.memory_info().rss)
        return sum(sizes), max(sizes, default=0)

    def cpu_seconds(self) -> float:
        """User + system CPU of the live tree (pool children included)."""
        total = 0.0
        for process in self.tree():
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the process group (a warm shutdown for Celery), SIGKILL after ``grace``."""
        if self.popen.poll() is not None:
            return
        _signal_group(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            print(f"  {self.name} did not stop within {grace:g}s; killing it", flush=True)
            _signal_group(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        # Pool children that outlived their parent belong to the same group.
        _signal_group(self.popen.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Processes:
    """Every process started here, stopped in reverse order on exit."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Proc] = []

    def spawn(self, name: str, command: list[str], env: dict[str, str]) -> Proc:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        proc = Proc(name, popen, log)
        self.started.append(proc)
        return proc

    def stop(self, *procs: Proc) -> None:
        for proc in reversed(procs or tuple(self.started)):
            proc.stop()

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()


@contextlib.contextmanager
def log_tails_on_error(workdir: Path) -> Iterator[None]:
    """On an exception, print the tail of every process log in ``workdir``, then re-raise."""
    try:
        yield
    except BaseException:
        for log in sorted(workdir.glob("*.log")):
            tail = log.read_text(errors="replace")[-2000:]
            if tail.strip():
                print(f"--- {log.name} (tail) ---\n{tail}", file=sys.stderr)
        raise


def subprocess_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHQ_", "BENCH_"))}
    env["PYTHONPATH"] = str(ROOT)
    env["BENCH_BROKER_URL"] = BROKER_URL
    env["BENCH_COUNTER_URL"] = counter_url()
    return env


def batchq_env(data_dir: Path) -> dict[str, str]:
    env = subprocess_env()
    env.update(BATCHQ_DATABASE_URL=DATABASE_URL, BATCHQ_BROKER_URL=BROKER_URL,
               BATCHQ_DATA_DIR=str(data_dir))
    return env


def celery_worker(app: str, queue: str, node: str, concurrency: int) -> list[str]:
    # Mingle and gossip only slow the start; both workers run without them.
    return [sys.executable, "-m", "celery", "-A", app, "worker", "--concurrency",
            str(concurrency), "--loglevel", "WARNING", "--queues", queue, "-n", f"{node}@%h",
            "--without-mingle", "--without-gossip"]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and not proc.alive():
            tail = proc.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode} while "
                               f"waiting for {what}; log tail:\n{tail}")
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")


def wait_worker_ready(celery_app: Any, node: str, proc: Proc, concurrency: int) -> None:
    """Ready when the node answers a ping and its pool processes exist."""
    destination = f"{node}@{socket.gethostname()}"

    def ready() -> bool:
        if len(proc.tree()) < concurrency + 1:
            return False
        replies = celery_app.control.ping(destination=[destination], timeout=0.5)
        return any(destination in reply for reply in replies)

    wait_until(ready, 90, f"worker {destination}", proc)


# -- memory sampling ----------------------------------------------------------------------


@dataclass
class Peak:
    total: int = 0
    largest: int = 0


class RssSampler(threading.Thread):
    """Samples the RSS of process trees every ``interval`` seconds; keeps the peaks."""

    def __init__(self, procs: dict[str, Proc], interval: float = POLL_SECONDS) -> None:
        super().__init__(daemon=True)
        self.procs = procs
        self.interval = interval
        self.peaks = {name: Peak() for name in procs}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)
        self.sample()

    def sample(self) -> None:
        for name, proc in self.procs.items():
            total, largest = proc.rss()
            peak = self.peaks[name]
            peak.total = max(peak.total, total)
            peak.largest = max(peak.largest, largest)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def postgres_cpu_seconds() -> float:
    """CPU of the PostgreSQL backends serving the bench database (read, not touched)."""
    total = 0.0
    for process in psutil.process_iter(["name", "cmdline"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            if "postgres" in (process.info["name"] or "") and f" {DB_NAME} " in cmdline:
                times = process.cpu_times()
                total += times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


# -- storage ------------------------------------------------------------------------------


def reset_storage() -> None:
    """Drop and recreate ``batchq_bench``, migrate it, and empty Redis db 14 (only those)."""
    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        conn.close()
    from batchq.storage.migrate import upgrade

    upgrade(DATABASE_URL)
    empty_broker()
    _create_bench_user()


def counter_url() -> str:
    """The Redis of plain Celery's counters: the broker when it is Redis, else db 14."""
    return BROKER_URL if BROKER_URL.startswith("redis") else "redis://127.0.0.1:6379/14"


def empty_broker() -> None:
    """Empty the bench's Redis db, or purge the bench's RabbitMQ queues (only those)."""
    redis.Redis.from_url(counter_url()).flushdb()
    if BROKER_URL.startswith("amqp"):
        import kombu

        with kombu.Connection(BROKER_URL) as conn:
            channel = conn.default_channel
            for queue in ("batchq", "plain", "chord"):
                with contextlib.suppress(Exception):
                    channel.queue_purge(queue)


def ensure_vhost(name: str) -> str:
    """A RabbitMQ virtual host of the benchmarks' own, so no other batchq on this machine
    shares its queues; returns its AMQP URL (``rabbitmqctl`` must be on the PATH)."""
    existing = subprocess.run(["rabbitmqctl", "-q", "list_vhosts"], capture_output=True,
                              text=True, check=True).stdout.split()
    if name not in existing:
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], check=True)
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*",
                        ".*"], check=True)
    return f"amqp://guest:guest@127.0.0.1:5672/{name}"


#: The token of the system user the benchmark calls the API as (set by ``reset_storage``).
_token = ""


def _create_bench_user() -> None:
    global _token
    from batchq.service.users import NewUser, create_user
    from batchq.storage.engine import create_engine
    from batchq.storage.users import UserRepository

    engine = create_engine(DATABASE_URL)
    try:
        _token = create_user(UserRepository(engine), NewUser("bench", is_system=True))
    finally:
        engine.dispose()


# -- HTTP ---------------------------------------------------------------------------------


def http_json(port: int, method: str, path: str, body: bytes | None = None,
              timeout: float = 30) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {_token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_utc(value: str) -> datetime:
    """The API's timestamps are naive UTC (or carry an offset); returns aware UTC."""
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# -- the batchq run -----------------------------------------------------------------------


@dataclass
class BatchqResult:
    items: int
    post_seconds: float
    wall_seconds: float  # POST start until the poll saw the final status
    post_to_finished_seconds: float  # POST start until finishedAt (server clock)
    processing_seconds: float  # startedAt (first page picked) until finishedAt
    post_to_first_page_seconds: float  # POST start until startedAt
    api_peak: Peak
    worker_peak: Peak
    worker_cpu_seconds: float
    postgres_cpu_seconds: float
    batch: dict[str, Any] = field(default_factory=dict)

    @property
    def processing_rate(self) -> float:
        return self.items / self.processing_seconds

    @property
    def wall_rate(self) -> float:
        return self.items / self.wall_seconds


def run_batchq(args: argparse.Namespace, procs: Processes, workdir: Path) -> BatchqResult:
    data_dir = workdir / "batchq-data"
    data_dir.mkdir()
    env = batchq_env(data_dir)
    port = free_port()
    api = procs.spawn("api", [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
        "--timeout", str(args.api_timeout), "api:create_app()"], env)
    worker = procs.spawn("batchq-worker", celery_worker(
        "workers.app", "batchq", "bench-batchq", args.concurrency), env)
    beat = None
    if not args.no_beat:
        beat = procs.spawn("beat", [sys.executable, "-m", "celery", "-A", "workers.app", "beat",
                                    "--loglevel", "WARNING", "--schedule",
                                    str(workdir / "beat-schedule")], env)

    wait_until(lambda: _healthy(port), 60, "the API's /healthz", api)
    os.environ.update({k: v for k, v in env.items() if k.startswith("BATCHQ_")})
    from workers.app import create_celery

    wait_worker_ready(create_celery(), "bench-batchq", worker, args.concurrency)
    print(f"  API on :{port} (gunicorn pid {api.popen.pid}), worker pid {worker.popen.pid}"
          f"{'' if beat is None else f', beat pid {beat.popen.pid}'}", flush=True)

    body = json.dumps({"type": "echo" if args.spin_us else "noop", "pageSize": args.page_size,
                       "items": [payload(args, i) for i in range(args.items)]},
                      separators=(",", ":")).encode()
    print(f"  POST /batches: {args.items:,} items, {len(body) / MB:.1f} MB body", flush=True)
    sampler = RssSampler({"api": api, "worker": worker})
    sampler.start()
    profiler = _start_profiler(args, worker, workdir) if args.profile else None
    try:
        cpu_before = worker.cpu_seconds()
        pg_before = postgres_cpu_seconds()
        post_start_utc = datetime.now(UTC)
        t0 = time.monotonic()
        status, created = http_json(port, "POST", "/batches", body, timeout=args.api_timeout + 60)
        post_seconds = time.monotonic() - t0
        if status != 201:
            raise RuntimeError(f"POST /batches answered {status}: {str(created)[:2000]}")
        del body
        batch_id = created["id"]
        print(f"  batch {batch_id} created in {post_seconds:.2f}s", flush=True)
        batch = _poll_until_final(port, batch_id, api, worker, args.timeout)
        wall_seconds = time.monotonic() - t0
        worker_cpu = worker.cpu_seconds() - cpu_before
        pg_cpu = postgres_cpu_seconds() - pg_before
    finally:
        if profiler is not None:
            _stop_profiler(profiler)
        sampler.stop()
    _check_batch(batch, args.items)
    started, finished = parse_utc(batch["startedAt"]), parse_utc(batch["finishedAt"])
    result = BatchqResult(
        items=args.items, post_seconds=post_seconds, wall_seconds=wall_seconds,
        post_to_finished_seconds=(finished - post_start_utc).total_seconds(),
        processing_seconds=(finished - started).total_seconds(),
        post_to_first_page_seconds=(started - post_start_utc).total_seconds(),
        api_peak=sampler.peaks["api"], worker_peak=sampler.peaks["worker"],
        worker_cpu_seconds=worker_cpu, postgres_cpu_seconds=pg_cpu, batch=batch,
    )
    procs.stop(*[p for p in (api, worker, beat) if p is not None])
    return result


def payload(args: argparse.Namespace, n: int) -> dict[str, Any]:
    """Item ``n``: nothing to do, or ``spin_us`` microseconds of CPU (``--spin-us``)."""
    return {"n": n, "spin_us": args.spin_us} if args.spin_us else {"n": n}


def _healthy(port: int) -> bool:
    try:
        return http_json(port, "GET", "/healthz", timeout=2)[0] == 200
    except OSError:
        return False


def _poll_until_final(port: int, batch_id: str, api: Proc, worker: Proc,
                      timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last_report = time.monotonic()
    while True:
        status, batch = http_json(port, "GET", f"/batches/{batch_id}")
        if status != 200:
            raise RuntimeError(f"GET /batches/{batch_id} answered {status}: {batch}")
        if batch["status"] not in ACTIVE:
            return dict(batch)
        for proc in (api, worker):
            if not proc.alive():
                raise RuntimeError(f"{proc.name} died (exit {proc.popen.returncode}); "
                                   f"see {proc.log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"batch {batch_id} not final after {timeout:g}s: "
                               f"{batch['status']}, {batch['progressDescription']}")
        if time.monotonic() - last_report >= 10:
            last_report = time.monotonic()
            print(f"    {batch['status']}: {batch['processedItems']:,} items, "
                  f"{batch['progress']} jobs, queue {batch['workQueueStatus']}", flush=True)
        time.sleep(POLL_SECONDS)


def _check_batch(batch: dict[str, Any], items: int) -> None:
    problems = []
    if batch["status"] != "Completed":
        problems.append(f"status {batch['status']} (failureReason {batch['failureReason']!r})")
    if batch["processedItems"] != items:
        problems.append(f"processedItems {batch['processedItems']} != {items}")
    if batch["failedItems"] != 0:
        problems.append(f"failedItems {batch['failedItems']} != 0")
    if batch["jobsCompleted"] != batch["totalJobs"]:
        problems.append(f"jobsCompleted {batch['jobsCompleted']} != {batch['totalJobs']}")
    if not batch.get("startedAt") or not batch.get("finishedAt"):
        problems.append("startedAt or finishedAt missing")
    if problems:
        raise SystemExit("batchq run FAILED: " + "; ".join(problems))


_PROFILE_FORMATS = {".json": "speedscope", ".svg": "flamegraph"}  # else collapsed stacks


def _start_profiler(args: argparse.Namespace, worker: Proc,
                    workdir: Path) -> subprocess.Popen[bytes]:
    """py-spy record of the worker and its pool processes (``--profile``)."""
    out = Path(args.profile).resolve()
    py_spy = Path(sys.executable).with_name("py-spy")
    command = [str(py_spy), "record", "--pid", str(worker.popen.pid), "--subprocesses",
               "--rate", "100", "--format", _PROFILE_FORMATS.get(out.suffix, "raw"),
               "--output", str(out)]
    log = (workdir / "py-spy.log").open("wb")
    print(f"  profiling the worker with py-spy into {out}", flush=True)
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def _stop_profiler(profiler: subprocess.Popen[bytes]) -> None:
    profiler.send_signal(signal.SIGINT)
    try:
        profiler.wait(timeout=60)
    except subprocess.TimeoutExpired:
        profiler.kill()
        profiler.wait()


# -- the plain Celery run -----------------------------------------------------------------


@dataclass
class PlainResult:
    items: int
    tasks: int
    publish_seconds: float
    total_seconds: float  # first publish until the last task finished
    worker_peak: Peak
    worker_cpu_seconds: float
    # The same tasks published before the worker started: worker throughput alone.
    consume_items: int = 0
    consume_seconds: float = 0.0  # first task done until the last task done

    @property
    def rate(self) -> float:
        return self.items / self.total_seconds

    @property
    def consume_rate(self) -> float:
        return self.consume_items / self.consume_seconds if self.consume_seconds else 0.0


def run_plain(args: argparse.Namespace, procs: Processes) -> PlainResult:
    """Publish while the worker consumes (what a user does); then pre-published, worker alone."""
    from bench import plain_celery

    pages = [[payload(args, i) for i in range(start, min(start + args.page_size, args.items))]
             for start in range(0, args.items, args.page_size)]
    client = redis.Redis.from_url(counter_url())
    client.delete(plain_celery.COUNTER_KEY, plain_celery.FINISHED_AT_KEY,
                  plain_celery.FIRST_DONE_AT_KEY)
    worker = _start_plain_worker(args, procs, "plain-worker")
    sampler = RssSampler({"worker": worker})
    sampler.start()
    try:
        cpu_before = worker.cpu_seconds()
        t0_wall = time.time()
        publish_seconds = _publish(pages, args.items)
        print(f"  published {len(pages):,} tasks in {publish_seconds:.2f}s", flush=True)
        finished_at = _wait_plain_done(client, worker, args)
        worker_cpu = worker.cpu_seconds() - cpu_before
    finally:
        sampler.stop()
    procs.stop(worker)
    result = PlainResult(items=args.items, tasks=len(pages), publish_seconds=publish_seconds,
                         total_seconds=finished_at - t0_wall, worker_peak=sampler.peaks["worker"],
                         worker_cpu_seconds=worker_cpu)
    if len(pages) > 1:
        client.delete(plain_celery.COUNTER_KEY, plain_celery.FINISHED_AT_KEY,
                      plain_celery.FIRST_DONE_AT_KEY)
        _publish(pages, args.items)
        print("  pre-published the same tasks; starting a worker to consume them", flush=True)
        worker = _start_plain_worker(args, procs, "plain-worker-2")
        finished_at = _wait_plain_done(client, worker, args)
        first_done_at = float(client.get(plain_celery.FIRST_DONE_AT_KEY) or finished_at)
        result.consume_items = args.items - len(pages[0])
        result.consume_seconds = finished_at - first_done_at
        procs.stop(worker)
    return result


def _start_plain_worker(args: argparse.Namespace, procs: Processes, name: str) -> Proc:
    from bench import plain_celery

    worker = procs.spawn(name, celery_worker(
        "bench.plain_celery", plain_celery.QUEUE, "bench-plain", args.concurrency),
        subprocess_env())
    wait_worker_ready(plain_celery.app, "bench-plain", worker, args.concurrency)
    print(f"  plain worker pid {worker.popen.pid}", flush=True)
    return worker


def _publish(pages: list[list[dict[str, Any]]], total: int) -> float:
    """Publish one task per page over a single producer connection; returns seconds."""
    from bench import plain_celery

    t0 = time.monotonic()
    with plain_celery.app.producer_or_acquire() as producer:
        for page in pages:
            plain_celery.run_page.apply_async(args=(page, total), producer=producer)
    return time.monotonic() - t0


def _wait_plain_done(client: redis.Redis, worker: Proc, args: argparse.Namespace) -> float:
    """The time (epoch) the last task finished; fails unless exactly every item ran."""
    from bench import plain_celery

    deadline = time.monotonic() + args.timeout
    while (finished_at := client.get(plain_celery.FINISHED_AT_KEY)) is None:
        if not worker.alive():
            raise RuntimeError(f"{worker.name} died; see {worker.log}")
        if time.monotonic() > deadline:
            done = int(client.get(plain_celery.COUNTER_KEY) or 0)
            raise RuntimeError(f"plain Celery not done after {args.timeout:g}s: {done} items")
        time.sleep(0.05)
    done = int(client.get(plain_celery.COUNTER_KEY) or 0)
    if done != args.items:
        raise SystemExit(f"plain Celery run FAILED: {done} items counted, not {args.items}")
    return float(finished_at)


# -- report -------------------------------------------------------------------------------


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def summary_rows(args: argparse.Namespace, bq: BatchqResult | None, plain: PlainResult | None,
                 loads: dict[str, str]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = [
        ("items / page size / concurrency",
         f"{args.items:,} / {args.page_size} / {args.concurrency} (cpus: {os.cpu_count()})"),
    ]
    if bq is not None:
        rows += [
            ("batchq: POST /batches (creation)", f"{bq.post_seconds:8.2f} s"),
            ("batchq: POST start -> first page started",
             f"{bq.post_to_first_page_seconds:8.2f} s"),
            ("batchq: processing (startedAt->finishedAt)", f"{bq.processing_seconds:8.2f} s"),
            ("batchq: wall, POST start -> finishedAt", f"{bq.post_to_finished_seconds:8.2f} s"),
            ("batchq: wall, POST start -> final seen", f"{bq.wall_seconds:8.2f} s"),
            ("batchq: items/s over processing", f"{bq.processing_rate:10,.0f}"),
            ("batchq: items/s over wall (incl. creation)", f"{bq.wall_rate:10,.0f}"),
            ("batchq: peak RSS API (gunicorn tree)",
             f"{bq.api_peak.total / MB:8.1f} MB (largest process {bq.api_peak.largest / MB:.1f})"),
            ("batchq: peak RSS worker (main + pool)",
             f"{bq.worker_peak.total / MB:8.1f} MB "
             f"(largest process {bq.worker_peak.largest / MB:.1f})"),
            ("batchq: CPU worker tree / PG backends",
             f"{bq.worker_cpu_seconds:8.1f} s / {bq.postgres_cpu_seconds:.1f} s"),
            ("batchq: final", f"{bq.batch['status']}, processed {bq.batch['processedItems']:,}, "
                              f"failed {bq.batch['failedItems']}, jobs {bq.batch['progress']}"),
        ]
    if plain is not None:
        rows += [
            ("plain Celery: publish tasks", f"{plain.publish_seconds:8.2f} s ({plain.tasks:,})"),
            ("plain Celery: first publish -> last done", f"{plain.total_seconds:8.2f} s"),
            ("plain Celery: items/s", f"{plain.rate:10,.0f}"),
            ("plain Celery: items/s, pre-published (worker only)",
             f"{plain.consume_rate:10,.0f} ({plain.consume_seconds:.2f} s)"),
            ("plain Celery: peak RSS worker (main + pool)",
             f"{plain.worker_peak.total / MB:8.1f} MB"),
            ("plain Celery: CPU worker tree", f"{plain.worker_cpu_seconds:8.1f} s"),
        ]
    if bq is not None and plain is not None:
        ratio = bq.processing_rate / plain.rate
        rows += [
            ("ratio batchq/plain (processing)",
             f"{ratio:8.2f}x  {'OK' if ratio >= 0.8 else 'BELOW'} target 0.8x"),
            ("ratio batchq/plain (wall incl. creation)", f"{bq.wall_rate / plain.rate:8.2f}x"),
            ("ratio batchq processing/plain worker only",
             f"{bq.processing_rate / plain.consume_rate:8.2f}x" if plain.consume_rate else "n/a"),
        ]
    rows += [(f"load average ({when})", value) for when, value in loads.items()]
    return rows


def print_summary(args: argparse.Namespace, bq: BatchqResult | None, plain: PlainResult | None,
                  loads: dict[str, str]) -> None:
    print_table(f"batchq throughput benchmark (PostgreSQL + {BROKER_URL.split(':')[0]})",
                summary_rows(args, bq, plain, loads), rule_extra=40)


def print_table(title: str, rows: list[tuple[str, str]], rule_extra: int) -> None:
    """The figures as aligned ``label  value`` lines between rules, under ``title``."""
    width = max(len(label) for label, _ in rows)
    print("\n" + "=" * (width + rule_extra))
    print(title)
    print("=" * (width + rule_extra))
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    print("=" * (width + rule_extra), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes")
    parser.add_argument("--only", choices=("both", "batchq", "plain"), default="both")
    parser.add_argument("--no-beat", action="store_true", help="run without celery beat")
    parser.add_argument("--api-timeout", type=int, default=900,
                        help="gunicorn --timeout (its default, 30 s, is too short for 1M items)")
    parser.add_argument("--timeout", type=float, default=3600, help="give up on a run after")
    parser.add_argument("--spin-us", type=float, default=0,
                        help="microseconds of CPU per item (echo's spin_us; default: noop)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    parser.add_argument("--profile", metavar="FILE",
                        help="py-spy record the batchq worker into FILE "
                             "(.svg flamegraph, .json speedscope, else collapsed stacks)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.items < 1 or args.page_size < 1 or args.concurrency < 1:
        raise SystemExit("--items, --page-size and --concurrency must be at least 1")
    loads = {"start": load()}
    bq = plain = None
    with tempfile.TemporaryDirectory(prefix="batchq-bench-") as tmp:
        workdir = Path(tmp)
        with log_tails_on_error(workdir), Processes(workdir) as procs:
            print("Resetting database batchq_bench and Redis db 14", flush=True)
            reset_storage()
            if args.only in ("both", "batchq"):
                print("batchq run", flush=True)
                bq = run_batchq(args, procs, workdir)
                loads["after batchq"] = load()
            if args.only in ("both", "plain"):
                print("plain Celery run", flush=True)
                plain = run_plain(args, procs)
                loads["after plain"] = load()
    print_summary(args, bq, plain, loads)
    if args.json:
        Path(args.json).write_text(json.dumps(_figures(bq, plain)))
    return 0


def _figures(bq: BatchqResult | None, plain: PlainResult | None) -> dict[str, float]:
    """What ``run`` reports of one run: items/s of both, the ratio, the peaks."""
    found: dict[str, float] = {}
    if bq is not None:
        found.update(batchq_rate=bq.processing_rate, batchq_wall_rate=bq.wall_rate,
                     api_peak_mb=bq.api_peak.largest / MB,
                     worker_peak_mb=bq.worker_peak.largest / MB)
    if plain is not None:
        found.update(plain_rate=plain.rate)
    return found


#: run(): (broker, microseconds of CPU per item, items in quick mode, items in a full run)
RUNS = (("redis", 0.0, 100_000, 1_000_000), ("amqp", 0.0, 100_000, 1_000_000),
        ("redis", 20.0, 50_000, 300_000), ("amqp", 20.0, 50_000, 300_000))


def run(quick: bool) -> list[Row]:
    """The benchmark's rows (``bench/run_all.py``): batchq against plain Celery page tasks on
    Redis and on RabbitMQ, for noop items and for 20 us of CPU per item; each run in a
    process of its own, with ``BENCH_BROKER_URL`` set to its broker."""
    rows = []
    amqp = os.environ.get("BENCH_AMQP_URL") or ensure_vhost("batchq_bench")
    for broker, spin, quick_items, items in RUNS:
        env = {**os.environ, "BENCH_BROKER_URL": BROKER_URL if broker == "redis" else amqp}
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            command = [sys.executable, "-m", "bench.throughput", "--items",
                       str(quick_items if quick else items), "--spin-us", str(spin),
                       "--json", out.name]
            subprocess.run(command, cwd=ROOT, env=env, check=True)
            found = json.loads(Path(out.name).read_text())
        work = f"echo spin_us={spin:g}" if spin else "noop"
        ratio = found["batchq_rate"] / found["plain_rate"]
        target = 1.0 if spin else 0.8
        label = f"{broker}, {work}, {quick_items if quick else items:,} items"
        rows += [
            Row("throughput", f"{label}: batchq items/s (first page to final)",
                f"{found['batchq_rate']:,.0f}"),
            Row("throughput", f"{label}: plain Celery page tasks items/s",
                f"{found['plain_rate']:,.0f}"),
            Row("throughput", f"{label}: batchq / plain", f"{ratio:.2f}x", f">= {target}x",
                ratio >= target),
        ]
    return rows


if __name__ == "__main__":
    sys.exit(main())
