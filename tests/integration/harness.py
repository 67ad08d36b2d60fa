"""A batchq installation for one test: a fresh database, a broker, real worker processes.

The API runs in the test process (a Flask test client); every task runs in real
``celery worker`` processes started here, killed at the end of the test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import sqlalchemy as sa
from flask.testing import FlaskClient

from api import create_app
from batchq.domain.statuses import ACTIVE_STATUSES
from batchq.runtime import Runtime, build_runtime
from batchq.service.users import NewUser, create_user
from batchq.settings import Settings
from batchq.storage.tables import item_errors, pages
from workers.app import CeleryDispatcher, create_celery

ROOT = Path(__file__).resolve().parents[2]

#: Short leases and re-send delays, so recovery happens within a test's time.
FAST_RECOVERY = {
    "lease_seconds": 3.0,
    "requeue_after_seconds": 3.0,
    "monitor_interval_seconds": 0.5,
    "execute_slice_seconds": 0.3,
    "types": ("tests.support_types",),
}
#: The tests' HTTP receivers listen on 127.0.0.1, which the egress rule refuses unless allowed.
LOCAL_RECEIVERS = {"egress_allow": ("127.0.0.1/32",)}


@dataclass
class Cluster:
    """One batchq installation under test."""

    settings: Settings
    logs: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: Folders the worker and beat processes import from besides the repository.
    python_path: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.runtime: Runtime = build_runtime(
            self.settings, CeleryDispatcher(create_celery(self.settings))
        )
        self.client: FlaskClient = create_app(runtime=self.runtime).test_client()
        token = create_user(self.runtime.storage.users, NewUser("harness", is_system=True))
        self.client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"

    # -- processes --------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHQ_")}
        for name, value in vars(self.settings).items():
            if isinstance(value, tuple):
                value = ",".join(value)
            env[f"BATCHQ_{name.upper()}"] = "none" if value is None else str(value)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *self.python_path])
        return env

    def start_worker(
        self, concurrency: int = 2, app: str = "workers.app"
    ) -> subprocess.Popen[bytes]:
        """Start a ``celery worker`` node and wait until it consumes."""
        name = f"w{len(self.processes)}"
        log = self.logs / f"{name}.log"
        command = [sys.executable, "-m", "celery", "-A", app, "worker", "--loglevel", "INFO",
                   "--concurrency", str(concurrency), "--queues", "batchq", "-n", f"{name}@%h",
                   "--without-mingle", "--without-gossip"]
        if self.settings.embedded:
            command.append("--without-heartbeat")
        process = self._spawn(command, log)
        wait_until(lambda: "ready." in log.read_text(), 60, f"worker {name} to start", process)
        return process

    def start_beat(self) -> subprocess.Popen[bytes]:
        """Start ``celery beat``, which sends the periodic monitor."""
        log = self.logs / f"beat{len(self.processes)}.log"
        command = [sys.executable, "-m", "celery", "-A", "workers.app", "beat",
                   "--loglevel", "INFO", "--schedule", str(self.logs / "beat-schedule")]
        return self._spawn(command, log)

    def _spawn(self, command: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            process = subprocess.Popen(command, cwd=ROOT, env=self.env(), stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        """kill -9 a worker node: its main process and every pool process."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    @staticmethod
    def pids_of(process: subprocess.Popen[bytes]) -> set[int]:
        """The node's main process and its pool processes."""
        main = psutil.Process(process.pid)
        return {main.pid} | {child.pid for child in main.children(recursive=True)}

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                self.kill(process)
        self.runtime.storage.engine.dispose()

    # -- batches ----------------------------------------------------------------

    def create(self, items: list[Any], type: str = "echo", **options: Any) -> str:
        response = self.client.post("/batches", json={"type": type, "items": items, **options})
        assert response.status_code == 201, response.get_json()
        return str(response.get_json()["id"])

    def get(self, batch_id: str) -> dict[str, Any]:
        response = self.client.get(f"/batches/{batch_id}")
        assert response.status_code == 200, response.get_json()
        return response.get_json()  # type: ignore[no-any-return]

    def wait_final(self, batch_id: str, timeout: float = 120) -> dict[str, Any]:
        """Poll until the batch reaches a final status; return it."""
        wait_until(lambda: self.get(batch_id)["status"] not in ACTIVE_STATUSES, timeout,
                   f"batch {batch_id} to finish", None, lambda: self.get(batch_id))
        return self.get(batch_id)

    def pages(self, batch_id: str) -> list[dict[str, Any]]:
        return [dict(row) for row in self.runtime.storage.pages.of_batch(batch_id)]

    def errors(self, batch_id: str) -> dict[str, str]:
        query = sa.select(item_errors.c.key, item_errors.c.message).where(
            item_errors.c.batch_id == batch_id)
        with self.runtime.storage.engine.connect() as conn:
            return {key: message for key, message in conn.execute(query)}

    def done_pages(self, batch_id: str) -> int:
        query = sa.select(sa.func.count()).select_from(pages).where(
            pages.c.batch_id == batch_id, pages.c.status == "done")
        with self.runtime.storage.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def assert_counts_are_exact(self, batch_id: str) -> dict[str, Any]:
        """The batch's counters equal the per-page and per-item truth in storage."""
        batch = self.get(batch_id)
        done = [page for page in self.pages(batch_id) if page["status"] == "done"]
        assert batch["processedItems"] == sum(p["succeeded"] + p["failed"] for p in done)
        assert batch["failedItems"] == sum(p["failed"] for p in done)
        assert batch["failedItems"] == len(self.errors(batch_id))
        assert batch["jobsCompleted"] == len(done)
        return batch


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process and every process under it, in whatever process group: what a
    failed test leaves of ``batchq up``, whose processes have groups of their own."""
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in [*psutil.Process(process.pid).children(recursive=True),
                      psutil.Process(process.pid)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
    process.wait(timeout=10)


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str,
    process: subprocess.Popen[bytes] | None = None, describe: Callable[[], Any] | None = None,
) -> None:
    """Poll ``predicate`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode} waiting for {what}")
        time.sleep(0.1)
    state = f"; last state: {describe()}" if describe else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{state}")
