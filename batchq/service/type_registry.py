"""The batch-process registry (seed 001): every batch type with the status of its last run.

The last run of a type is its newest batch, posted or started as a process.
Its status has the seed's shape, which depends on where the run is:

- never run: ``failureReason`` and ``type`` only;
- running (Waiting, Processing, Cancelling): ``opsExpected`` and ``progress``,
  no ``dateCompleted``;
- finished: ``dateCompleted``, no ``opsExpected``.

Ops are items: ``opsCompleted`` counts processed items (failed ones included,
as the seed's ``failedOps`` are among them), ``progress`` counts pages, as
``GET /batches/{id}`` does. ``serverId`` names a worker running the batch now,
else the worker that ran its last finished page, else (no page ran yet) the
host of the API answering.
"""

from __future__ import annotations

import socket
from typing import Any

import sqlalchemy as sa

from batchq.batch_types.registry import BatchType
from batchq.domain.statuses import FINAL_STATUSES, PageStatus
from batchq.errors import BatchTypeNotFound
from batchq.runtime import Runtime
from batchq.service.control import cancellation_behaviour
from batchq.storage.store import Row
from batchq.storage.tables import batches, pages

NEVER_RUN = "This batch process type has never run"


def describe_batch_types(rt: Runtime) -> list[dict[str, Any]]:
    """Every registered type, sorted by code, each with its last run's status."""
    return [describe(rt, rt.registry.get(code)) for code in rt.registry.codes()]


def describe_batch_type(rt: Runtime, code: str) -> dict[str, Any]:
    """One type with its last run's status; ``BatchTypeNotFound`` for an unknown code."""
    return describe(rt, registered_type(rt, code))


def registered_type(rt: Runtime, code: str) -> BatchType:
    """The type registered under ``code`` (case-sensitive); ``BatchTypeNotFound`` otherwise."""
    if code not in rt.registry:
        raise BatchTypeNotFound(_unknown_code_message(rt, code), {"type": code})
    return rt.registry.get(code)


def describe(rt: Runtime, batch_type: BatchType) -> dict[str, Any]:
    """The registry entry of ``batch_type``: what it is, and how its last run went."""
    run = last_run(rt.store.engine, batch_type.code)
    queue = rt.store.work_queue_status(run["id"]) if run is not None else None
    return {
        "type": {"code": batch_type.code, "name": batch_type.name or batch_type.code,
                 "description": batch_type.description},
        "cancellation_behaviour": cancellation_behaviour(rt, batch_type.code),
        # Every batch runs on however many workers consume the queue.
        "distributed": True,
        "status": _status(rt, batch_type.code, run, queue.workers if queue else []),
        "work_queue_status": {"queued": queue.queued if queue else 0,
                              "running": queue.running if queue else 0,
                              "workers": queue.workers if queue else []},
    }


def last_run(engine: sa.Engine, code: str) -> Row | None:
    """The newest batch of type ``code``, read on the (type, created_at) index; or None."""
    query = (sa.select(batches).where(batches.c.type == code)
             .order_by(batches.c.created_at.desc(), batches.c.id.desc()).limit(1))
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return None if row is None else dict(row)


def _status(rt: Runtime, code: str, run: Row | None, workers: list[str]) -> dict[str, Any]:
    if run is None:
        return {"failure_reason": NEVER_RUN, "type": code}
    status: dict[str, Any] = {
        "type": code,
        "batch_id": run["id"],
        "batch_status": run["status"],
        "date_created": run["created_at"],
        "ops_completed": run["processed_items"],
        "failed_ops": run["failed_items"],
        "server_id": workers[0] if workers else _last_worker(rt.store.engine, run["id"]),
    }
    if run["started_at"] is not None:
        status["start_date"] = run["started_at"]
    if run["status"] in FINAL_STATUSES:
        status["date_completed"] = run["finished_at"]
        if run["failure_reason"]:
            status["failure_reason"] = run["failure_reason"]
    else:
        status["ops_expected"] = run["total_items"]
        status["progress"] = f"{run['jobs_completed']} out of {run['total_jobs']}"
    return status


def _last_worker(engine: sa.Engine, batch_id: str) -> str:
    """The worker that ran the batch's last finished page, or this host if none ran yet."""
    query = (sa.select(pages.c.worker)
             .where(pages.c.batch_id == batch_id, pages.c.status == PageStatus.DONE)
             .where(pages.c.worker.is_not(None))
             .order_by(pages.c.page_no.desc()).limit(1))
    with engine.connect() as conn:
        worker = conn.execute(query).scalar()
    return str(worker) if worker else socket.gethostname()


def _unknown_code_message(rt: Runtime, code: str) -> str:
    message = f"No batch type {code!r} is registered"
    same_but_case = [known for known in rt.registry.codes() if known.lower() == code.lower()]
    if same_but_case:
        return f"{message}; codes are case-sensitive: did you mean {same_but_case[0]!r}?"
    return f"{message}; registered types: {', '.join(rt.registry.codes()) or 'none'}"
