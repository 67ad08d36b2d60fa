"""What a batch and a batch type look like over the native REST API.

The service layer returns what it read (``BatchDetails``, ``TypeStatus``); the
functions here shape it for the schemas in ``api/schemas``. Other APIs that
show the same things in another vendor's shape read the same service results.
"""

from __future__ import annotations

from typing import Any

from flask import g, has_app_context

from batchq.domain.permissions import is_operator
from batchq.domain.progress import (
    WorkQueueStatus,
    current_stage,
    jobs_progress,
    progress_description,
    progress_percent,
)
from batchq.domain.statuses import FINAL_STATUSES
from batchq.service.control import BatchDetails
from batchq.service.type_registry import TypeStatus

#: The batch-process API's status of a type that never ran.
NEVER_RUN = "This batch process type has never run"


def batch_view(details: BatchDetails) -> dict[str, Any]:
    """The batch as ``BatchSchema`` dumps it (``GET /batches/{id}`` and every change)."""
    batch = details.batch
    file = details.result_file
    return {
        **batch,
        "unprocessed_items": batch["total_items"] - batch["processed_items"],
        "progress": jobs_progress(batch),
        "progress_percent": progress_percent(batch["processed_items"], batch["total_items"]),
        "progress_description": progress_description(batch, details.read_at),
        "retries": details.retries,
        "current_stage": current_stage(batch),
        "work_queue_status": work_queue_view(details.work_queue),
        "item_errors": {row["key"]: row["message"] for row in details.first_errors},
        "item_errors_truncated": batch["failed_items"] > len(details.first_errors),
        "cancellation_behaviour": details.cancellation_behaviour,
        "result_file": None if file is None else {
            "filename": file.filename, "media_type": file.media_type, "size": file.size,
            "url": f"/batches/{batch['id']}/result-file"},
    }


def work_queue_view(queue: WorkQueueStatus) -> dict[str, Any]:
    """``workQueueStatus``: pages queued, pages running, and the workers running them.

    Worker ids (host:pid) name the service's machines, so only an operator
    (``batchq.domain.permissions.is_operator``) gets them; others get an empty list.
    """
    caller = g.get("caller") if has_app_context() else None  # None: no request (a test)
    workers = queue.workers if caller is None or is_operator(caller) else []
    return {"queued": queue.queued, "running": queue.running, "workers": workers}


def registry_entry(status: TypeStatus) -> dict[str, Any]:
    """A type as the batch-process registry shows it (``GET /batch-types/{code}``)."""
    batch_type = status.batch_type
    return {
        "type": {"code": batch_type.code, "name": batch_type.name or batch_type.code,
                 "description": batch_type.description},
        "cancellation_behaviour": status.cancellation_behaviour,
        # Every batch runs on however many workers consume the queue.
        "distributed": True,
        "status": last_run_view(status),
        "work_queue_status": work_queue_view(status.work_queue),
    }


def last_run_view(status: TypeStatus) -> dict[str, Any]:
    """The last run's status, in the batch-process API's three shapes.

    Never run: ``failureReason`` and ``type`` only. Running (Waiting, Processing,
    Cancelling): ``opsExpected`` and ``progress``, no ``dateCompleted``.
    Finished: ``dateCompleted``, no ``opsExpected``. Ops are items:
    ``opsCompleted`` counts processed items (failed ones included, as the
    API's ``failedOps`` are among them); ``progress`` counts pages.
    """
    code, run = status.batch_type.code, status.last_run
    if run is None:
        return {"failure_reason": NEVER_RUN, "type": code}
    view: dict[str, Any] = {
        "type": code, "batch_id": run["id"], "batch_status": run["status"],
        "date_created": run["created_at"], "ops_completed": run["processed_items"],
        "failed_ops": run["failed_items"], "server_id": status.server_id,
    }
    if run["started_at"] is not None:
        view["start_date"] = run["started_at"]
    if run["status"] in FINAL_STATUSES:
        view["date_completed"] = run["finished_at"]
        if run["failure_reason"]:
            view["failure_reason"] = run["failure_reason"]
    else:
        view["ops_expected"] = run["total_items"]
        view["progress"] = jobs_progress(run)
    return view
