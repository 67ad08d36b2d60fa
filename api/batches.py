"""``/batches``: create, read, change and cancel batches."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.blueprint import Blueprint
from api.context import current_caller, runtime
from api.errors import TOO_MANY_ACTIVE
from api.idempotency import idempotent
from api.presenters import batch_view
from api.schemas.batches import (
    BatchCountSchema,
    BatchFilterSchema,
    BatchListItemSchema,
    BatchPatchSchema,
    BatchQuerySchema,
    BatchSchema,
)
from api.uploads import QUERY_PARAMETERS, REQUEST_BODY, read_create_request
from batchq.domain.lists import BatchFilter, BatchOrder, Window
from batchq.domain.permissions import tenant_of_new_batch
from batchq.service import control, listing
from batchq.service.creation import NewBatch, create_batch

NO_CREDENTIAL = "No credential, or a wrong one (WWW-Authenticate names the schemes)"

blp = Blueprint("batches", __name__, url_prefix="/batches", description="Batches of items")


def _filter(args: dict[str, Any]) -> BatchFilter:
    return BatchFilter(batch_id=args.get("batch_id"), type=args.get("type"),
                       status=args.get("status"), tenant_ids=args.get("tenant_id_in"),
                       without_tenant=args["without_tenant_id"],
                       suspended=args.get("suspended"), created_by=args.get("created_by"),
                       id_prefix=args.get("batch_id_prefix"))


def _shown(batch_id: str) -> dict[str, Any]:
    return batch_view(control.batch_details(runtime(), batch_id))


def created_answer(batch_id: str) -> Any:
    """The body of a 201 for a created batch, for a retry whose first answer was lost."""
    return BatchSchema().dump(_shown(batch_id))


@blp.route("")
class Batches(MethodView):
    @blp.arguments(BatchQuerySchema, location="query", unknown="raise")
    @blp.response(200, BatchListItemSchema(many=True))
    @blp.alt_response(401, description=NO_CREDENTIAL)
    @blp.alt_response(400, description="An unknown filter or sort, sortBy without sortOrder, "
                                       "or an afterKey that names no batch you may read")
    def get(self, args: dict[str, Any]) -> list[Any]:
        """List the batches you may read, filtered, sorted and paged"""
        order = BatchOrder(sort_by=args.get("sort_by"),
                           descending=args.get("sort_order") == "desc")
        window = Window(args["first_result"], args["max_results"],
                        after_key=args.get("after_key"))
        return listing.list_batches(runtime(), current_caller(), _filter(args), order, window)

    @idempotent(blp, created_answer)
    @blp.doc(requestBody=REQUEST_BODY, parameters=QUERY_PARAMETERS)
    @blp.response(201, BatchSchema)
    @blp.alt_response(401, description=NO_CREDENTIAL)
    @blp.alt_response(400, description="Refused items, with their indexes (and upload lines)")
    @blp.alt_response(403, description="You may not create batches for that tenant")
    @blp.alt_response(413, description="More items than BATCHQ_MAX_ITEMS, or a JSON body "
                      "larger than BATCHQ_MAX_BODY_MB")
    @blp.alt_response(415, description="A Content-Type other than JSON, NDJSON or CSV")
    @blp.alt_response(429, **TOO_MANY_ACTIVE)
    def post(self) -> dict[str, Any]:
        """Create a batch: a JSON body, or the items streamed as NDJSON or CSV"""
        body = read_create_request(blp.ARGUMENTS_PARSER)
        rt = runtime()
        caller = current_caller()
        options = {name: body[name] for name in
                   ("description", "page_size", "jobs_per_seed", "failure_threshold",
                    "retention_days", "callback_url", "retry_policy", "run_windows",
                    "max_items_per_second", "max_concurrent_jobs") if name in body}
        tenant = tenant_of_new_batch(caller, body.get("tenant_id"), "tenant_id" in body)
        request = NewBatch(type=body["type"], params=body["params"], tenant_id=tenant,
                           creator=caller, url_params=body.get("url_params", frozenset()),
                           **options)
        batch = create_batch(rt, request, body["items"])
        return _shown(batch["id"])


@blp.route("/count")
@blp.arguments(BatchFilterSchema, location="query", unknown="raise")
@blp.response(200, BatchCountSchema)
@blp.alt_response(401, description=NO_CREDENTIAL)
@blp.alt_response(400, description="An unknown filter or value")
def count(args: dict[str, Any]) -> dict[str, int]:
    """Count the batches you may read that match the filters"""
    return {"count": listing.count_batches(runtime(), current_caller(), _filter(args))}


@blp.route("/<batch_id>")
class BatchById(MethodView):
    @blp.response(200, BatchSchema)
    @blp.alt_response(401, description=NO_CREDENTIAL)
    @blp.alt_response(404, description="No such batch, or not one you may read")
    def get(self, batch_id: str) -> dict[str, Any]:
        """Read a batch: status, counters, progress and item errors"""
        rt = runtime()
        batch = listing.check_access(rt, current_caller(), batch_id)
        return batch_view(control.batch_details(rt, batch_id, batch))

    @blp.arguments(BatchPatchSchema)
    @blp.response(200, BatchSchema)
    @blp.alt_response(401, description=NO_CREDENTIAL)
    @blp.alt_response(403, description="You may read the batch but not change it")
    @blp.alt_response(404, description="No such batch, or not one you may read")
    @blp.alt_response(400, description="Nothing to change, or a value out of range or over "
                                       "the tenant's cap (BATCHQ_TENANT_LIMITS)")
    @blp.alt_response(409, description="The batch already finished")
    @blp.alt_response(415, description="A body that is not application/json")
    def patch(self, body: dict[str, Any], batch_id: str) -> dict[str, Any]:
        """Suspend or resume, describe, rethrottle (maxItemsPerSecond, maxConcurrentJobs) or
        re-window (runWindows) a batch; a new limit holds within a second"""
        listing.check_access(runtime(), current_caller(), batch_id, change=True)
        control.change_batch(runtime(), batch_id, body)
        return _shown(batch_id)

    @blp.response(202, BatchSchema)
    @blp.alt_response(401, description=NO_CREDENTIAL)
    @blp.alt_response(403, description="You may read the batch but not change it")
    @blp.alt_response(404, description="No such batch, or not one you may read")
    @blp.alt_response(409, description="Already finished, or its type cannot be cancelled")
    def delete(self, batch_id: str) -> dict[str, Any]:
        """Cancel a batch (drain): no new page starts, running pages finish"""
        listing.check_access(runtime(), current_caller(), batch_id, change=True)
        cancelled = control.cancel_batch(runtime(), batch_id)
        return batch_view(control.batch_details(runtime(), batch_id, cancelled))
