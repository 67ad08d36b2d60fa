"""``/batches/{id}/items``, ``/errors`` and ``/errors/summary``: what each item became."""

from __future__ import annotations

from typing import Any

from api.auth import current_caller
from api.batches import NO_CREDENTIAL, runtime
from api.blueprint import Blueprint
from api.item_schemas import (
    ErrorPageSchema,
    ErrorSummarySchema,
    ItemPageSchema,
    ItemQuerySchema,
    SummaryQuerySchema,
    WindowQuerySchema,
)
from batchq.runtime import Runtime
from batchq.service import control, item_reads
from batchq.service import listing as queries
from batchq.service.item_reads import ItemStatus, Window
from batchq.storage.common import Row

blp = Blueprint("items", __name__, url_prefix="/batches",
                description="A batch's items and item errors, in input order")

NOT_READABLE = "No such batch, or not one you may read"


def _readable_batch(batch_id: str) -> tuple[Runtime, Row]:
    rt = runtime()
    queries.check_access(rt.store.engine, current_caller(), batch_id)
    return rt, control.get_batch(rt, batch_id)


def _window(args: dict[str, Any]) -> Window:
    return Window(args["first_result"], args["max_results"])


@blp.route("/<batch_id>/errors")
@blp.arguments(WindowQuerySchema, location="query", unknown="raise")
@blp.response(200, ErrorPageSchema)
@blp.alt_response(400, description="firstResult or maxResults out of range")
@blp.alt_response(401, description=NO_CREDENTIAL)
@blp.alt_response(404, description=NOT_READABLE)
def errors(args: dict[str, Any], batch_id: str) -> dict[str, Any]:
    """List the item errors of a batch, in input order"""
    rt, batch = _readable_batch(batch_id)
    return {"total": batch["failed_items"], "first_result": args["first_result"],
            "max_results": args["max_results"],
            "errors": item_reads.list_errors(rt.store.engine, batch_id, _window(args))}


@blp.route("/<batch_id>/errors/summary")
@blp.arguments(SummaryQuerySchema, location="query", unknown="raise")
@blp.response(200, ErrorSummarySchema)
@blp.alt_response(400, description="limit out of range")
@blp.alt_response(401, description=NO_CREDENTIAL)
@blp.alt_response(404, description=NOT_READABLE)
def error_summary(args: dict[str, Any], batch_id: str) -> dict[str, Any]:
    """The most frequent error messages of a batch, with counts and sample keys"""
    rt, batch = _readable_batch(batch_id)
    summary = item_reads.error_summary(rt.store.engine, batch_id, args["limit"])
    return {"failed_items": batch["failed_items"], **summary}


@blp.route("/<batch_id>/items")
@blp.arguments(ItemQuerySchema, location="query", unknown="raise")
@blp.response(200, ItemPageSchema)
@blp.alt_response(400, description="An unknown status, or firstResult or maxResults out of "
                                   "range")
@blp.alt_response(401, description=NO_CREDENTIAL)
@blp.alt_response(404, description=NOT_READABLE)
def list_items(args: dict[str, Any], batch_id: str) -> dict[str, Any]:
    """List the items of a batch in input order, optionally only those with one outcome"""
    rt, batch = _readable_batch(batch_id)
    status = ItemStatus(args["status"]) if "status" in args else None
    found = item_reads.list_items(rt.store.engine, batch, status, _window(args))
    for item in found:
        if item["error"] is None:
            del item["error"]
    return {"total": item_reads.count_items(batch, status), "status": status,
            "first_result": args["first_result"], "max_results": args["max_results"],
            "items": found}
