"""The batch-process registry: every batch type with how its last run went.

The last run of a type is its newest batch, posted or started as a process.
``serverId`` names a worker running the run now, else the worker that ran its
last finished page, else (no page ran yet) the host answering. What a reader
sees of it is the REST API's business (``api/presenters.py``).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from batchq.batch_types.registry import BatchType
from batchq.domain.progress import WorkQueueStatus
from batchq.runtime import Runtime
from batchq.service.control import cancellation_behaviour
from batchq.storage.common import Row


@dataclass(frozen=True)
class TypeStatus:
    """A registered type, its last run (None if it never ran) and who runs that run."""

    batch_type: BatchType
    cancellation_behaviour: str
    last_run: Row | None
    work_queue: WorkQueueStatus
    server_id: str | None


def type_statuses(rt: Runtime) -> list[TypeStatus]:
    """Every registered type, sorted by code, each with its last run."""
    return [type_status(rt, code) for code in rt.registry.codes()]


def type_status(rt: Runtime, code: str) -> TypeStatus:
    """One type with its last run; ``UnknownBatchType`` for an unknown code (case-sensitive)."""
    batch_type = rt.registry.get(code)
    run = rt.storage.batches.last_of_type(code)
    if run is None:
        return TypeStatus(batch_type, cancellation_behaviour(rt, code), None,
                          WorkQueueStatus(0, 0), None)
    queue = rt.storage.pages.work_queue_status(run["id"])
    server = (queue.workers[0] if queue.workers
              else rt.storage.pages.last_worker(run["id"]) or socket.gethostname())
    return TypeStatus(batch_type, cancellation_behaviour(rt, code), run, queue, server)
