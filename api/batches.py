"""``/batches``: create, read, change and cancel batches."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from api.blueprint import Blueprint
from api.schemas import BatchCreateSchema, BatchPatchSchema, BatchSchema
from batchq import control
from batchq.creation import NewBatch, create_batch
from batchq.runtime import Runtime

blp = Blueprint("batches", __name__, url_prefix="/batches", description="Batches of items")


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["batchq"]
    return rt


@blp.route("")
class Batches(MethodView):
    @blp.arguments(BatchCreateSchema)
    @blp.response(201, BatchSchema)
    @blp.alt_response(400, description="Refused items, with their indexes")
    @blp.alt_response(413, description="More items than the configured maximum")
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a batch"""
        rt = runtime()
        options = {name: body[name] for name in
                   ("description", "tenant_id", "page_size", "jobs_per_seed",
                    "failure_threshold", "retention_days") if name in body}
        request = NewBatch(type=body["type"], params=body["params"], **options)
        batch = create_batch(rt, request, body["items"])
        return control.describe_batch(rt, batch["id"])


@blp.route("/<batch_id>")
class BatchById(MethodView):
    @blp.response(200, BatchSchema)
    @blp.alt_response(404, description="No such batch")
    def get(self, batch_id: str) -> dict[str, Any]:
        """Read a batch: status, counters, progress and item errors"""
        return control.describe_batch(runtime(), batch_id)

    @blp.arguments(BatchPatchSchema)
    @blp.response(200, BatchSchema)
    @blp.alt_response(404, description="No such batch")
    @blp.alt_response(409, description="The batch already finished")
    def patch(self, body: dict[str, Any], batch_id: str) -> dict[str, Any]:
        """Suspend or resume a batch, or change its description"""
        rt = runtime()
        control.change_batch(rt, batch_id, body)
        return control.describe_batch(rt, batch_id)

    @blp.response(202, BatchSchema)
    @blp.alt_response(404, description="No such batch")
    @blp.alt_response(409, description="Already finished, or its type cannot be cancelled")
    def delete(self, batch_id: str) -> dict[str, Any]:
        """Cancel a batch (drain): no new page starts, running pages finish"""
        rt = runtime()
        control.cancel_batch(rt, batch_id)
        return control.describe_batch(rt, batch_id)
