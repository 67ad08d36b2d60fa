"""The Camunda 7 batch REST API at ``/engine-rest``: runtime batches, their statistics and history.

Camunda's semantics: ``/batch`` lists unfinished batches only (a finished one is
history, and a runtime call naming it answers 404), ``/history/batch`` lists
every batch. Errors are Camunda's ``{"type", "message"}``. What maps to what is
in docs/vendor-apis/camunda.md.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from api.context import current_caller, runtime
from api.errors import register_error_format
from api.schemas.camunda import (
    CamundaBatchCountQuerySchema,
    CamundaBatchQuerySchema,
    CamundaBatchSchema,
    CamundaBatchStatisticsSchema,
    CamundaCountSchema,
    CamundaDeleteQuerySchema,
    CamundaErrorSchema,
    CamundaHistoricBatchSchema,
    CamundaHistoryCountQuerySchema,
    CamundaHistoryQuerySchema,
    CamundaStatisticsCountQuerySchema,
    CamundaStatisticsQuerySchema,
    CamundaSuspendedSchema,
)
from api.vendor_blueprint import NO_CREDENTIAL, VendorBlueprint, json_error
from batchq.domain.lists import BatchFilter, BatchOrder, Window
from batchq.domain.statuses import FINAL_STATUSES
from batchq.errors import BatchNotFound
from batchq.service import control, listing
from batchq.storage.common import Row

PREFIX = "/engine-rest"
#: Camunda's exception names by status; a 409 of batchq is Camunda's 400 BadUserRequest.
EXCEPTION_TYPES = {400: "InvalidRequestException", 401: "AuthenticationException",
                   403: "AuthorizationException", 404: "InvalidRequestException",
                   500: "ProcessEngineException", 503: "ProcessEngineException"}
#: Sort names of Camunda and the columns they sort by.
SORTS = {"batchId": "batchId", "tenantId": "tenantId", "startTime": "createdAt",
         "endTime": "finishedAt", "removalTime": "expiresAt"}
NOT_FOUND = "No unfinished batch with that id you may read (finished ones are history)"

blp = VendorBlueprint("camunda-7-batch-api", __name__, url_prefix=PREFIX,
                      error_schema=CamundaErrorSchema,
                      description="The Camunda 7 batch REST API (docs/vendor-apis/camunda.md)")
route_errors = blp.errors({400: "A parameter Camunda would refuse, e.g. sortOrder without "
                                "sortBy", 401: NO_CREDENTIAL})


def camunda_error(status: int, message: str, details: dict[str, Any]) -> Any:
    """Camunda's error answer; batchq's 409 (the state forbids it) is Camunda's 400."""
    if status == 409:
        return json_error(400, {"type": "BadUserRequestException", "message": message})
    return json_error(status, {"type": EXCEPTION_TYPES.get(status, "InvalidRequestException"),
                               "message": message})


def register(app: Flask) -> None:
    """Answer errors under ``/engine-rest`` in Camunda's shape."""
    register_error_format(app, PREFIX, camunda_error)


# -- shaping -----------------------------------------------------------------------


def _job_definitions(batch: Row) -> dict[str, Any]:
    return {**batch, "batch_jobs_per_seed": batch["jobs_per_seed"],
            "invocations_per_batch_job": batch["page_size"],
            "seed_job_definition_id": f"{batch['id']}:seed",
            "monitor_job_definition_id": f"{batch['id']}:monitor",
            "batch_job_definition_id": f"{batch['id']}:execute"}


def statistics_view(batch: Row, failed_jobs: int) -> dict[str, Any]:
    """A batch with Camunda's job counts: remaining = not done; failed = done with a failure."""
    return {**_job_definitions(batch), "remaining_jobs": batch["total_jobs"] -
            batch["jobs_completed"], "completed_jobs": batch["jobs_completed"],
            "failed_jobs": failed_jobs, "start_time": batch["created_at"],
            "execution_start_time": batch["started_at"]}


def historic_view(batch: Row) -> dict[str, Any]:
    """A batch as history: started at creation; removed by the cleanup after retention."""
    return {**_job_definitions(batch), "start_time": batch["created_at"],
            "end_time": batch["finished_at"], "removal_time": batch["expires_at"]}


# -- reading the request -------------------------------------------------------------


def _filter(args: dict[str, Any], **more: Any) -> BatchFilter:
    # Only true has an effect (false is the default); both true filter nothing out.
    with_failures = True if args.get("with_failures") else None
    if args.get("without_failures"):
        with_failures = None if with_failures else False
    return BatchFilter(batch_id=args.get("batch_id"), type=args.get("type"),
                       tenant_ids=args.get("tenant_id_in"),
                       without_tenant=args["without_tenant_id"],
                       suspended=args.get("suspended"), created_by=args.get("created_by"),
                       created_before=args.get("started_before"),
                       created_after=args.get("started_after"),
                       with_failures=with_failures, **more)


def _order(args: dict[str, Any]) -> BatchOrder:
    sort_by = args.get("sort_by")
    return BatchOrder(sort_by=SORTS[sort_by] if sort_by else "batchId",
                      descending=args.get("sort_order") == "desc")


def _window(args: dict[str, Any]) -> Window:
    return Window(args["first_result"], args["max_results"])


def _listed(args: dict[str, Any], **more: Any) -> list[Row]:
    return listing.list_batches(runtime(), current_caller(), _filter(args, **more),
                                _order(args), _window(args))


def _runtime_batch(batch_id: str, change: bool = False) -> Row:
    """The unfinished batch the caller may read (or change); finished ones are history: 404."""
    batch = listing.check_access(runtime(), current_caller(), batch_id, change)
    if batch["status"] in FINAL_STATUSES:
        raise BatchNotFound(f"Batch with id '{batch_id}' does not exist (it finished: "
                            f"GET {PREFIX}/history/batch/{batch_id})", {"batchId": batch_id})
    return batch


def _historic_batch(batch_id: str) -> Row:
    return listing.check_access(runtime(), current_caller(), batch_id)


# -- runtime batches -------------------------------------------------------------------


@blp.route("/batch", strict_slashes=False)
@blp.arguments(CamundaBatchQuerySchema, location="query")
@blp.response(200, CamundaBatchSchema(many=True))
@route_errors
def list_batches(args: dict[str, Any]) -> list[dict[str, Any]]:
    """Query unfinished batches: filters, sortBy with sortOrder, firstResult and maxResults"""
    return [_job_definitions(batch) for batch in _listed(args, finished=False)]


@blp.route("/batch/count", strict_slashes=False)
@blp.arguments(CamundaBatchCountQuerySchema, location="query")
@blp.response(200, CamundaCountSchema)
@route_errors
def count_batches(args: dict[str, Any]) -> dict[str, int]:
    """Count the unfinished batches that match the filters"""
    return {"count": listing.count_batches(runtime(), current_caller(),
                                           _filter(args, finished=False))}


@blp.route("/batch/statistics", strict_slashes=False)
@blp.arguments(CamundaStatisticsQuerySchema, location="query")
@blp.response(200, CamundaBatchStatisticsSchema(many=True))
@route_errors
def batch_statistics(args: dict[str, Any]) -> list[dict[str, Any]]:
    """Unfinished batches with remainingJobs, completedJobs and failedJobs"""
    found = _listed(args, finished=False)
    failed = listing.failed_job_counts(runtime(), [batch["id"] for batch in found])
    return [statistics_view(batch, failed.get(batch["id"], 0)) for batch in found]


@blp.route("/batch/statistics/count", strict_slashes=False)
@blp.arguments(CamundaStatisticsCountQuerySchema, location="query")
@blp.response(200, CamundaCountSchema)
@route_errors
def count_statistics(args: dict[str, Any]) -> dict[str, int]:
    """Count the batch statistics that match the filters"""
    return {"count": listing.count_batches(runtime(), current_caller(),
                                           _filter(args, finished=False))}


@blp.route("/batch/<batch_id>", strict_slashes=False)
@blp.response(200, CamundaBatchSchema)
@blp.errors({401: NO_CREDENTIAL, 404: NOT_FOUND})
def get_batch(batch_id: str) -> dict[str, Any]:
    """Read one unfinished batch"""
    return _job_definitions(_runtime_batch(batch_id))


@blp.route("/batch/<batch_id>", methods=["DELETE"], strict_slashes=False)
@blp.arguments(CamundaDeleteQuerySchema, location="query")
@blp.response(204)
@blp.errors({400: "A bad cascade, or a batch whose type cannot be cancelled",
             401: NO_CREDENTIAL, 403: "You may read the batch but not cancel it",
             404: NOT_FOUND})
def delete_batch(args: dict[str, Any], batch_id: str) -> None:
    """Cancel a batch, drain-style: no new job starts, running ones finish (cascade accepted)"""
    _runtime_batch(batch_id, change=True)
    control.cancel_batch(runtime(), batch_id)


@blp.route("/batch/<batch_id>/suspended", methods=["PUT"], strict_slashes=False)
@blp.arguments(CamundaSuspendedSchema)
@blp.response(204)
@blp.errors({400: "A body without a boolean suspended", 401: NO_CREDENTIAL,
             403: "You may read the batch but not change it", 404: NOT_FOUND})
def set_suspended(body: dict[str, Any], batch_id: str) -> None:
    """Suspend (true) or activate (false) a batch"""
    _runtime_batch(batch_id, change=True)
    control.set_suspended(runtime(), batch_id, body["suspended"])


# -- history ----------------------------------------------------------------------------


@blp.route("/history/batch", strict_slashes=False)
@blp.arguments(CamundaHistoryQuerySchema, location="query")
@blp.response(200, CamundaHistoricBatchSchema(many=True))
@route_errors
def list_history(args: dict[str, Any]) -> list[dict[str, Any]]:
    """Query every batch, running or ended (completed=true: ended only)"""
    return [historic_view(batch) for batch in _listed(args, finished=args.get("completed"))]


@blp.route("/history/batch/count", strict_slashes=False)
@blp.arguments(CamundaHistoryCountQuerySchema, location="query")
@blp.response(200, CamundaCountSchema)
@route_errors
def count_history(args: dict[str, Any]) -> dict[str, int]:
    """Count the historic batches that match the filters"""
    wanted = _filter(args, finished=args.get("completed"))
    return {"count": listing.count_batches(runtime(), current_caller(), wanted)}


@blp.route("/history/batch/<batch_id>", strict_slashes=False)
@blp.response(200, CamundaHistoricBatchSchema)
@blp.errors({401: NO_CREDENTIAL, 404: "No batch with that id you may read"})
def get_history(batch_id: str) -> dict[str, Any]:
    """Read one batch as history: startTime, endTime, removalTime"""
    return historic_view(_historic_batch(batch_id))
