"""``/batches/{id}/items``, ``/errors`` and ``/errors/summary``: what each item became."""

from __future__ import annotations

from typing import Any

from api.blueprint import Blueprint
from api.context import current_caller, runtime
from api.schemas.items import (
    ErrorPageSchema,
    ErrorSummarySchema,
    ItemPageSchema,
    ItemQuerySchema,
    SummaryQuerySchema,
    WindowQuerySchema,
)
from batchq.domain.item_outcomes import ItemStatus
from batchq.domain.lists import Window
from batchq.service import item_reads, listing
from batchq.storage.common import Row

NO_CREDENTIAL = "No credential, or a wrong one (WWW-Authenticate names the schemes)"
NOT_READABLE = "No such batch, or not one you may read"

blp = Blueprint("items", __name__, url_prefix="/batches",
                description="A batch's items and item errors, in input order")


def _readable_batch(batch_id: str) -> Row:
    return listing.check_access(runtime(), current_caller(), batch_id)


def _window(args: dict[str, Any]) -> Window:
    return Window(args["first_result"], args["max_results"], after_index=args.get("after_index"))


def _windowed(args: dict[str, Any], total: int, rows: list[Any], **listed: Any) -> dict[str, Any]:
    """The answer's envelope; ``nextAfterIndex`` is the last row's index when the window is full."""
    full = len(rows) == args["max_results"]
    return {"total": total, "first_result": args["first_result"],
            "max_results": args["max_results"], "after_index": args.get("after_index"),
            "next_after_index": rows[-1]["seq"] if full else None, **listed}


@blp.route("/<batch_id>/errors")
@blp.arguments(WindowQuerySchema, location="query", unknown="raise")
@blp.response(200, ErrorPageSchema)
@blp.alt_response(400, description="firstResult, maxResults or afterIndex out of range, or "
                                   "afterIndex with firstResult")
@blp.alt_response(401, description=NO_CREDENTIAL)
@blp.alt_response(404, description=NOT_READABLE)
def errors(args: dict[str, Any], batch_id: str) -> dict[str, Any]:
    """List the item errors of a batch, in input order"""
    total, errors = item_reads.list_errors(runtime(), _readable_batch(batch_id), _window(args))
    return _windowed(args, total, errors, errors=errors)


@blp.route("/<batch_id>/errors/summary")
@blp.arguments(SummaryQuerySchema, location="query", unknown="raise")
@blp.response(200, ErrorSummarySchema)
@blp.alt_response(400, description="limit out of range")
@blp.alt_response(401, description=NO_CREDENTIAL)
@blp.alt_response(404, description=NOT_READABLE)
def error_summary(args: dict[str, Any], batch_id: str) -> dict[str, Any]:
    """The most frequent error messages of a batch, with counts and sample keys"""
    return item_reads.error_summary(runtime(), _readable_batch(batch_id), args["limit"])


@blp.route("/<batch_id>/items")
@blp.arguments(ItemQuerySchema, location="query", unknown="raise")
@blp.response(200, ItemPageSchema)
@blp.alt_response(400, description="An unknown status, or firstResult or maxResults out of "
                                   "range")
@blp.alt_response(401, description=NO_CREDENTIAL)
@blp.alt_response(404, description=NOT_READABLE)
def list_items(args: dict[str, Any], batch_id: str) -> dict[str, Any]:
    """List the items of a batch in input order, optionally only those with one outcome"""
    status = ItemStatus(args["status"]) if "status" in args else None
    total, found = item_reads.list_items(runtime(), _readable_batch(batch_id), status,
                                         _window(args))
    for item in found:
        if item["error"] is None:
            del item["error"]
    return _windowed(args, total, found, status=status, items=found)
