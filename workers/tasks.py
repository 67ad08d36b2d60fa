"""Thin tasks: each one builds nothing and decides nothing, it calls a batchq function."""

from __future__ import annotations

import logging
import os
import signal
import socket
from typing import Any

from celery.signals import worker_process_init

from batchq.engine.cleanup import delete_expired
from batchq.engine.deliveries import deliver as deliver_webhook
from batchq.engine.deliveries import dispatch_due
from batchq.engine.execution import run_job
from batchq.engine.monitoring import monitor_all, monitor_batch
from batchq.engine.seeding import seed_batch
from batchq.errors import StorageUnavailable
from batchq.runtime import Runtime, build_runtime
from batchq.service.processes import start_scheduled as start_scheduled_run
from workers.app import CeleryDispatcher, app

log = logging.getLogger(__name__)

_runtime: Runtime | None = None
# A database that is briefly unreachable is retried; anything else is a bug to see.
_RETRY: dict[str, Any] = {
    "autoretry_for": (StorageUnavailable,), "retry_backoff": True, "max_retries": 5,
}


def runtime() -> Runtime:
    """This process's runtime, built on first use (after the pool forked)."""
    global _runtime
    if _runtime is None:
        # No pre-ping: tasks retry on StorageUnavailable, and a ping per page is a round trip.
        _runtime = build_runtime(app.conf.batchq_settings, CeleryDispatcher(app),
                                 pool_pre_ping=False)
    return _runtime


@worker_process_init.connect
def _forget_parent_runtime(**_: Any) -> None:
    global _runtime
    _runtime = None


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
    """Monitor one batch, or every active batch when called by beat."""
    rt = runtime()
    if batch_id is None:
        monitor_all(rt)
    else:
        monitor_batch(rt, batch_id)


@app.task(name="batchq.cleanup", **_RETRY)
def cleanup() -> int:
    """Delete batches and idempotency keys past their retention."""
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


@app.task(name="batchq.dispatch_deliveries", **_RETRY)
def dispatch_deliveries() -> int:
    """Send a deliver message for every webhook delivery that is due (beat, periodic)."""
    return dispatch_due(runtime())
