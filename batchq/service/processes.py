"""Batch processes: runs of a type with a source, started by a user or a schedule.

The batch-process API names them; batchq runs them as batches.

A run is a source batch with ``process_run`` set, no tenant (it runs across
all tenants), created by whoever started it (``SCHEDULE_USER`` for celery
beat). A type has at most one active run (Waiting, Processing or Cancelling):
the partial unique index ``uq_batches_active_process`` refuses a second one,
so two starts at once cannot both succeed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from batchq.batch_types.registry import BatchType
from batchq.domain.lifecycle import cancellable
from batchq.domain.permissions import RUN_RIGHTS, Caller, Function, can_run_processes
from batchq.errors import Conflict, Forbidden, ProcessAlreadyRunning, UniqueViolation
from batchq.runtime import Runtime
from batchq.service.creation import NewBatch, create_source_batch
from batchq.storage.common import Row, utcnow

log = logging.getLogger(__name__)

#: The creator of the runs celery beat starts.
SCHEDULE_USER = "system:schedule"
_START_ATTEMPTS = 3


def active_run(rt: Runtime, code: str) -> Row | None:
    """The run of batch process ``code`` that is Waiting, Processing or Cancelling, if any."""
    return rt.storage.batches.active_process_run(code)


def start_process(rt: Runtime, code: str, *, by: Caller | None,
                  params: Mapping[str, Any] | None = None,
                  description: str | None = None) -> Row:
    """Start a run of batch process ``code`` for ``by`` (None: the schedule); returns its
    batch row.

    Raises ``Forbidden`` unless ``by`` may start the type (``runnable_type``),
    ``UnknownBatchType`` for an unknown code, ``Conflict`` for a type
    without a source (it has no items of its own to run), ``InvalidBatch`` for
    params its schema refuses, and ``ProcessAlreadyRunning`` (naming the active
    run in ``details["processId"]``) while a run of the type is active.
    """
    batch_type = runnable_type(rt, code, by)
    if batch_type.source is None:
        raise Conflict(f"Batch type {code!r} has no source, so it cannot be started as a batch "
                       "process; create a batch with its items instead (POST /batches)",
                       {"type": code})
    request = NewBatch(type=code, params=params, description=description, tenant_id=None,
                       create_user_id=SCHEDULE_USER if by is None else None, creator=by)
    for _attempt in range(_START_ATTEMPTS):
        try:
            return create_source_batch(rt, request, process_run=True)
        except UniqueViolation:
            running = active_run(rt, code)
            if running is not None:
                raise _already_running(code, running["id"]) from None
            # The active run ended between the insert and the look-up: try again.
    raise Conflict(f"Batch process {code!r} could not be started: runs kept starting and "
                   "ending at the same time; try again", {"type": code})


def stop_process(rt: Runtime, code: str, *, by: Caller | None) -> bool:
    """Drain the active run of ``code`` (like a cancel) for ``by``; False when none was
    running.

    Also False when the run is already stopping or finishing: this call stopped
    nothing. ``Conflict`` when the type cannot be cancelled, ``Forbidden`` unless
    ``by`` may start and stop the type.
    """
    batch_type = runnable_type(rt, code, by)
    run = active_run(rt, code)
    if run is None:
        return False
    if not batch_type.can_cancel:
        raise Conflict(f"Runs of batch process {code!r} cannot be stopped",
                       {"type": code, "processId": run["id"]})
    before = rt.storage.batches.request_cancel(run["id"], utcnow())
    if before is None or not cancellable(before):
        return False
    log.info("Stopping run %s of batch process %r.", run["id"], code)
    rt.send("monitor", run["id"])
    return True


def start_scheduled(rt: Runtime, code: str) -> Row | None:
    """celery beat's start of a scheduled type: skipped (and logged) while a run is active."""
    try:
        run = start_process(rt, code, by=None)
    except ProcessAlreadyRunning as exc:
        log.info("Skipped the scheduled start of batch process %r: run %s is still active.",
                 code, exc.details["processId"])
        return None
    log.info("Started run %s of batch process %r on its schedule.", run["id"], code)
    return run


def runnable_type(rt: Runtime, code: str, by: Caller | None) -> BatchType:
    """The type ``code`` if ``by`` (None: batchq's schedule) may start and stop its runs.

    Its ``start_requires`` says who may; by default the rights to change every
    tenant's batches. Without those, an unknown code is ``Forbidden`` too, so
    the answer does not tell which codes exist.
    """
    if by is None:
        return rt.registry.get(code)
    if code not in rt.registry and not can_run_processes(by):
        raise _may_not_run(by, None)
    batch_type = rt.registry.get(code)
    if not can_run_processes(by, batch_type.start_requires):
        raise _may_not_run(by, batch_type.start_requires)
    return batch_type


def _may_not_run(by: Caller, requires: tuple[Function, ...] | None) -> Forbidden:
    needs = [f.value for f in requires] if requires is not None else list(RUN_RIGHTS)
    return Forbidden(f"User {by.name!r} may not start or stop this batch process: that needs "
                     f"{', '.join(needs)} (or a system user)", {"needs": needs})


def _already_running(code: str, process_id: str) -> ProcessAlreadyRunning:
    return ProcessAlreadyRunning(
        f"Batch process {code!r} is already running as {process_id}; stop it "
        f"(POST /batch-types/{code}/stop) or wait until it finishes",
        {"type": code, "processId": process_id})
