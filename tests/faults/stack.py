"""batchq as shipped, for the fault suite: the Procfile's processes on a private
PostgreSQL cluster and a private Redis, which the suite may kill and restart.

Every process is started from its Procfile line exactly (``bash -c`` the line,
as a Procfile runner does), with nothing but the environment a deployment would
set: the database and broker URLs, the batch types, a data folder, a port. All
of batchq's timers keep their defaults.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests
import sqlalchemy as sa

from batchq.domain.statuses import ACTIVE_STATUSES
from batchq.service.users import NewUser, create_user
from batchq.storage.engine import create_engine
from batchq.storage.tables import item_errors, pages
from batchq.storage.users import UserRepository

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
BIN = Path(sys.executable).parent  # the virtual environment's celery, gunicorn, batchq


def procfile() -> dict[str, str]:
    """The Procfile's process types and their command lines."""
    lines = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            lines[name.strip()] = command.strip()
    return lines


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            value = predicate()
            if value:
                return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class PrivatePostgres:
    """A PostgreSQL 15 cluster of the suite's own, made with initdb in a temp folder.

    initdb refuses to run as root, so as root the cluster belongs to ``postgres``.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "pgdata"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/batchq"
        self._owner = "postgres" if os.geteuid() == 0 else None

    def _run(self, *command: str) -> None:
        if self._owner is not None:
            command = ("runuser", "-u", self._owner, "--", *command)
        done = subprocess.run(command, capture_output=True, timeout=120)
        if done.returncode:
            raise AssertionError(f"{command} failed: {done.stderr.decode().strip()}")

    def create(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._owner is not None:
            owner = pwd.getpwnam(self._owner)
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                  "postgres", "--no-sync", "-E", "UTF8")
        self.start()
        admin = create_engine(self.url.rsplit("/", 1)[0] + "/postgres",
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("CREATE DATABASE batchq"))
        admin.dispose()

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=200")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.folder / "postgres.log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRedis:
    """A redis-server of the suite's own, without persistence: a restart loses everything."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self._answers, 20, "redis-server to start")

    def _answers(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")

    def kill(self) -> None:
        """kill -9: every message it held is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class Process:
    """One process of a Procfile line."""

    kind: str
    popen: subprocess.Popen[bytes]
    log: Path

    def pids(self) -> set[int]:
        """Its main process and every child (a worker's pool)."""
        try:
            main = psutil.Process(self.popen.pid)
            return {main.pid} | {child.pid for child in main.children(recursive=True)}
        except psutil.NoSuchProcess:
            return set()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill_all(self) -> None:
        """kill -9 of the process group: a machine that died."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)


@dataclass
class Stack:
    """The Procfile's processes on the private services, and an API client."""

    folder: Path
    postgres: PrivatePostgres
    redis: PrivateRedis
    lines: dict[str, str] = field(default_factory=procfile)
    processes: list[Process] = field(default_factory=list)
    token: str = ""
    port: int = field(default_factory=free_port)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHQ_")}
        env.update({
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONPATH": str(ROOT),
            "BATCHQ_DATABASE_URL": self.postgres.url,
            "BATCHQ_BROKER_URL": self.redis.url,
            "BATCHQ_TYPES": "tests.support_types",
            "BATCHQ_DATA_DIR": str(self.folder / "data"),
            "PORT": str(self.port),
            "WEB_CONCURRENCY": "2",  # a test machine has two cores
        })
        return env

    # -- processes --------------------------------------------------------------

    def release(self) -> None:
        """The Procfile's ``release`` line, run once to completion (as a platform does)."""
        subprocess.run(["bash", "-c", self.lines["release"]], cwd=ROOT, env=self.env(),
                       check=True, capture_output=True, timeout=120)

    def start(self, kind: str) -> Process:
        """Start the Procfile line ``kind`` exactly as written (``bash -c`` runs it)."""
        return self.start_with(kind)

    def start_with(self, kind: str, **settings: str) -> Process:
        """``start``, with more environment variables (``BATCHQ_...`` settings)."""
        log = self.folder / f"{kind}{len(self.processes)}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(["bash", "-c", f"exec {self.lines[kind]}"], cwd=ROOT,
                                     env={**self.env(), **settings}, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        process = Process(kind, popen, log)
        self.processes.append(process)
        if kind == "worker":
            wait_until(lambda: "ready." in log.read_text(), 90, "a worker to start")
        if kind == "web":
            wait_until(lambda: self.request("get", "/batches/count").status_code == 200, 60,
                       "the API to answer")
        return process

    def running(self, kind: str) -> list[Process]:
        return [p for p in self.processes if p.kind == kind and p.alive()]

    def stop(self) -> None:
        for process in self.processes:
            if process.alive():
                process.kill_all()

    # -- the API and the database ------------------------------------------------

    def create_token(self) -> None:
        engine = create_engine(self.postgres.url)
        self.token = create_user(UserRepository(engine), NewUser("faults", is_system=True))
        engine.dispose()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return requests.request(method, f"http://127.0.0.1:{self.port}{path}",
                                headers={"Authorization": f"Bearer {self.token}"}, **kwargs)

    def create(self, type_code: str, items: list[Any], **options: Any) -> str:
        response = self.request("post", "/batches", timeout=300,
                                json={"type": type_code, "items": items, **options})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def get(self, batch_id: str) -> dict[str, Any]:
        response = self.request("get", f"/batches/{batch_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_final(self, batch_id: str, timeout: float) -> dict[str, Any]:
        return wait_until(lambda: (b := self.get(batch_id))["status"] not in ACTIVE_STATUSES
                          and b, timeout, f"batch {batch_id} to finish")

    @contextlib.contextmanager
    def database(self) -> Iterator[sa.Connection]:
        engine = create_engine(self.postgres.url, pool_size=1)
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()

    def pages(self, batch_id: str) -> list[dict[str, Any]]:
        with self.database() as conn:
            query = sa.select(pages).where(pages.c.batch_id == batch_id)
            return [dict(row) for row in conn.execute(query).mappings()]

    def error_count(self, batch_id: str) -> int:
        with self.database() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(item_errors)
                                    .where(item_errors.c.batch_id == batch_id)).scalar_one())

    def assert_exact(self, batch_id: str, items: int, failed: int = 0) -> dict[str, Any]:
        """Every item counted once: the batch's counters, the pages' and the error rows agree."""
        batch = self.get(batch_id)
        done = [p for p in self.pages(batch_id) if p["status"] == "done"]
        assert (batch["processedItems"], batch["failedItems"]) == (items, failed), batch
        assert sum(p["succeeded"] + p["failed"] for p in done) == items
        assert sum(p["failed"] for p in done) == failed == self.error_count(batch_id)
        assert batch["jobsCompleted"] == len(done) == batch["totalJobs"]
        return batch
