"""The batch-process API at ``/systemtools/v1``: batch process types, their last run, start, stop.

A BatchProcessType is a batchq batch type (codes are case-sensitive); a run is
a batch of that type (``batchq.service.type_registry``, ``batchq.service.processes``).
Reading needs the registry's read right, starting and stopping the right to run
processes (``batchq.domain.permissions``). See docs/vendor-apis/batch-process-api.md.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from api.context import current_caller, runtime
from api.errors import register_error_format
from api.presenters import work_queue_view
from api.schemas.batch_process_api import (
    SystemToolsBatchProcessErrorSchema,
    SystemToolsCollectionSchema,
    SystemToolsEnvelopeSchema,
    SystemToolsStartRequestSchema,
)
from api.vendor_blueprint import NO_CREDENTIAL, VendorBlueprint, json_error
from batchq.domain.permissions import check_read_registry
from batchq.domain.progress import jobs_progress
from batchq.domain.statuses import FINAL_STATUSES
from batchq.errors import ProcessAlreadyRunning
from batchq.service import processes, type_registry
from batchq.service.type_registry import TypeStatus

PREFIX = "/systemtools/v1"
#: The document's text for a type that never ran.
NEVER_RUN = "This batch process type has never run"
ERROR_CODES = {400: "BadInputException", 401: "AuthenticationException",
               403: "PermissionException", 404: "NotFoundException",
               405: "MethodNotAllowedException", 409: "ConflictException",
               413: "RequestEntityTooLargeException", 415: "UnsupportedMediaTypeException",
               429: "TooManyRequestsException", 503: "ServiceUnavailableException"}
RUN_RIGHTS = ("Starting or stopping a run needs ADMIN_BACKEND_SERVICES, ADMIN_BATCHES and "
              "ADMIN_EDIT_ALL_ORGANISATIONS (or a system user)")
READ_RIGHTS = "The registry needs ADMIN_BATCHES and ADMIN_VIEW_ALL_ORGANISATIONS"
UNKNOWN_TYPE = "No batch process type with that code (codes are case-sensitive)"

blp = VendorBlueprint("batch-process-api", __name__, url_prefix=PREFIX,
                      error_schema=SystemToolsBatchProcessErrorSchema,
                      description="The batch-process API (docs/vendor-apis/batch-process-api.md)")


def batch_process_error(status: int, message: str, details: dict[str, Any]) -> Any:
    """``{"status", "errorCode", "userMessage", "details"}``; a refused field is a detail."""
    problems = [{"message": f"{name}: {text}", "properties": {"parameter": name}}
                for name, text in (details.get("fields") or {}).items()]
    if not problems and details:
        problems = [{"message": message, "properties": details}]
    code = ERROR_CODES.get(status, "InternalServerErrorException")
    return json_error(status, {"status": status, "errorCode": f"gw.api.rest.exceptions.{code}",
                               "userMessage": message, "details": problems})


def register(app: Flask) -> None:
    """Answer errors under ``/systemtools/v1`` in the batch-process API's shape."""
    register_error_format(app, PREFIX, batch_process_error)


def status_view(status: TypeStatus) -> dict[str, Any]:
    """The ``status`` object in the document's three shapes (ops are items, progress pages)."""
    code, run = status.batch_type.code, status.last_run
    if run is None:
        return {"failure_reason": NEVER_RUN, "type": code}
    view: dict[str, Any] = {"type": code, "date_created": run["created_at"],
                            "ops_completed": run["processed_items"],
                            "failed_ops": run["failed_items"], "server_id": status.server_id}
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


def attributes(status: TypeStatus, **extra: Any) -> dict[str, Any]:
    """The BatchProcess resource. batchq runs every type's pages on all its workers, so every
    type is distributed and shows its work queue."""
    batch_type = status.batch_type
    shown = {"type": {"code": batch_type.code, "name": batch_type.name or batch_type.code},
             "status": status_view(status), "distributed": True, **extra}
    if shown["distributed"]:
        shown["work_queue_status"] = work_queue_view(status.work_queue)
    return shown


def _envelope(status: TypeStatus, **extra: Any) -> dict[str, Any]:
    return {"data": {"attributes": attributes(status, **extra)}}


@blp.route("/batch-processes")
@blp.response(200, SystemToolsCollectionSchema)
@blp.errors({401: NO_CREDENTIAL, 403: READ_RIGHTS})
def list_batch_processes() -> dict[str, Any]:
    """Every batch process type with its last run"""
    check_read_registry(current_caller())
    found = type_registry.type_statuses(runtime())
    return {"count": len(found),
            "data": [{"attributes": attributes(status)} for status in found]}


@blp.route("/batch-processes/<batch_process_type>")
@blp.response(200, SystemToolsEnvelopeSchema)
@blp.errors({401: NO_CREDENTIAL, 403: READ_RIGHTS, 404: UNKNOWN_TYPE})
def get_batch_process(batch_process_type: str) -> dict[str, Any]:
    """One batch process type: never run, running, or completed"""
    check_read_registry(current_caller())
    return _envelope(type_registry.type_status(runtime(), batch_process_type))


@blp.route("/batch-processes/<batch_process_type>/start", methods=["POST"])
@blp.arguments(SystemToolsStartRequestSchema, required=False)
@blp.response(200, SystemToolsEnvelopeSchema)
@blp.errors({400: "Params the type's schema refuses, or a malformed body",
             401: NO_CREDENTIAL, 403: RUN_RIGHTS, 404: UNKNOWN_TYPE,
             409: "The type has no source: it cannot run without posted items"})
def start(body: dict[str, Any], batch_process_type: str) -> dict[str, Any]:
    """Start a run; processId is in the answer only if this call started one"""
    rt = runtime()
    wanted = (body.get("data") or {}).get("attributes") or {}
    try:
        run = processes.start_process(rt, batch_process_type, by=current_caller(),
                                      params=wanted.get("params"),
                                      description=wanted.get("description"))
    except ProcessAlreadyRunning:
        return _envelope(type_registry.type_status(rt, batch_process_type))
    return _envelope(type_registry.type_status(rt, batch_process_type), process_id=run["id"])


@blp.route("/batch-processes/<batch_process_type>/stop", methods=["POST"])
@blp.response(200, SystemToolsEnvelopeSchema)
@blp.errors({401: NO_CREDENTIAL, 403: RUN_RIGHTS, 404: UNKNOWN_TYPE,
             409: "The type's runs cannot be stopped"})
def stop(batch_process_type: str) -> dict[str, Any]:
    """Stop the running run (drain); wasStopped says whether one was stopped"""
    rt = runtime()
    stopped = processes.stop_process(rt, batch_process_type, by=current_caller())
    return _envelope(type_registry.type_status(rt, batch_process_type), was_stopped=stopped)
