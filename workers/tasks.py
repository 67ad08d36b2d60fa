"""Thin tasks: each one builds nothing and decides nothing, it calls a batchq function."""

from __future__ import annotations

import logging
import os
import signal
import socket
from typing import Any

from celery.signals import worker_init, worker_process_init, worker_process_shutdown

from batchq.engine.cleanup import delete_expired
from batchq.engine.deliveries import deliver as deliver_webhook
from batchq.engine.deliveries import dispatch_due
from batchq.engine.execution import run_job
from batchq.engine.liveness import WorkerLiveness
from batchq.engine.monitoring import monitor_all, monitor_batch
from batchq.engine.seeding import seed_batch
from batchq.errors import BatchqError, StorageUnavailable
from batchq.runtime import Runtime, build_runtime
from batchq.service.processes import start_scheduled as start_scheduled_run
from batchq.storage.engine import probe
from batchq.storage.migrate import upgrade
from workers.app import CeleryDispatcher, app

log = logging.getLogger(__name__)

_runtime: Runtime | None = None
_liveness: WorkerLiveness | None = None
# A database that is unreachable is retried, every few seconds at most, for as long as an
# outage may last (a restart, a fail-over); anything else is a bug to see. A message whose
# retries run out is re-sent by the monitor.
_RETRY: dict[str, Any] = {
    "autoretry_for": (StorageUnavailable,), "retry_backoff": 1, "retry_backoff_max": 5,
    "max_retries": 120,
}


def runtime() -> Runtime:
    """This process's runtime, built on first use (after the pool forked), with the
    heartbeat that tells the monitor this process is alive (``batchq.engine.liveness``)."""
    global _runtime, _liveness
    if _runtime is None:
        # No pre-ping: tasks retry on StorageUnavailable, and a ping per page is a round trip.
        _runtime = build_runtime(app.conf.batchq_settings, CeleryDispatcher(app),
                                 pool_pre_ping=False)
    if _liveness is None:
        liveness = WorkerLiveness(_runtime, worker_name())
        liveness.start()  # before the first claim; raises StorageUnavailable while down
        _liveness = liveness
    return _runtime


@worker_process_init.connect
def _forget_parent_runtime(**_: Any) -> None:
    global _runtime, _liveness
    _runtime, _liveness = None, None


@worker_process_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    if _liveness is not None:
        _liveness.stop()


@worker_init.connect
def _check_database(**_: Any) -> None:
    """A worker that cannot reach its database, or whose URL is wrong, says so in one
    line and exits non-zero; on a fresh database it first migrates it (under a lock,
    so workers starting together and ``batchq migrate`` take turns)."""
    settings = app.conf.batchq_settings
    try:
        probe(settings.database_url)
        upgrade(settings.database_url)
    except BatchqError as exc:
        raise SystemExit(f"batchq: cannot start the worker: {exc.message}") from None


def worker_name() -> str:
    """Identifies the process running a page, for ``workQueueStatus``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@app.task(name="batchq.seed", **_RETRY)
def seed(batch_id: str) -> None:
    """Create the next pages of a batch, and come back while more remain."""
    rt = runtime()
    if seed_batch(rt, batch_id):
        rt.send("seed", batch_id)


@app.task(name="batchq.execute", **_RETRY)
def execute(batch_id: str, page_no: int) -> int:
    """Run a page (and, for one time slice, the pages after it)."""
    return run_job(runtime(), batch_id, page_no, worker_name(), on_hung=_end_this_process)


def _end_this_process() -> None:
    """An item ignored its deadline (docs/operations.md "Item deadlines"): nothing in this
    process can stop it, so the process ends. The prefork pool replaces it at once; its
    page's lease expires and the monitor re-runs the page, at most ``max_attempts`` times."""
    os.kill(os.getpid(), signal.SIGKILL)


@app.task(name="batchq.monitor", **_RETRY)
def monitor(batch_id: str | None = None) -> None:
    """Monitor one batch; called by beat, every active batch and the due webhooks.

    One periodic message does both sweeps: on a broker that delivers slowly (the
    embedded filesystem transport), two would double the backlog ahead of pages.
    """
    rt = runtime()
    if batch_id is not None:
        monitor_batch(rt, batch_id)
        return
    monitor_all(rt)  # one runner at a time, however many beats send it
    dispatch_due(rt)


@app.task(name="batchq.cleanup", **_RETRY)
def cleanup() -> int:
    """Delete batches and idempotency keys past their retention (one runner at a time)."""
    return delete_expired(runtime())


@app.task(name="batchq.start_scheduled", **_RETRY)
def start_scheduled(code: str) -> str | None:
    """Start a run of a scheduled batch process; skipped while one is active."""
    run = start_scheduled_run(runtime(), code)
    return None if run is None else str(run["id"])


@app.task(name="batchq.deliver", **_RETRY)
def deliver(delivery_id: str) -> str | None:
    """Make one attempt at a completion webhook; a failed one is retried by the sweep."""
    status = deliver_webhook(runtime(), delivery_id)
    return None if status is None else status.value
