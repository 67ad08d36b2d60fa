"""``POST /batches/{id}/retry``: retry the failed part of a finished batch as a new batch."""

from __future__ import annotations

from typing import Any

from api.batches import created_answer
from api.blueprint import Blueprint
from api.context import current_caller, runtime
from api.errors import TOO_MANY_ACTIVE
from api.idempotency import idempotent
from api.presenters import batch_view
from api.schemas.batches import BatchSchema, RetryRequestSchema
from batchq.service import control
from batchq.service.retry_batches import retry_batch

NO_CREDENTIAL = "No credential, or a wrong one (WWW-Authenticate names the schemes)"

blp = Blueprint("retries", __name__, url_prefix="/batches",
                description="Retrying the failed part of a batch as a linked batch")


@blp.route("/<batch_id>/retry", methods=["POST"])
@idempotent(blp, created_answer)
@blp.arguments(RetryRequestSchema)
@blp.response(201, BatchSchema)
@blp.alt_response(400, description="items is not failed, unprocessed or failed+unprocessed")
@blp.alt_response(401, description=NO_CREDENTIAL)
@blp.alt_response(403, description="You may read the batch but not create batches for its "
                                   "tenant")
@blp.alt_response(404, description="No such batch, or not one you may read")
@blp.alt_response(409, description="The batch is still active (Waiting, Processing or "
                                   "Cancelling), or has none of those items")
@blp.alt_response(429, **TOO_MANY_ACTIVE)
def retry(body: dict[str, Any], batch_id: str) -> dict[str, Any]:
    """Create a batch of the same type and params holding the finished batch's failed and/or
    unprocessed items, in their order, with their keys; linked by retryOf and retries"""
    rt = runtime()
    created = retry_batch(rt, current_caller(), batch_id, body["items"],
                          body.get("description"))
    return batch_view(control.batch_details(rt, created["id"]))
