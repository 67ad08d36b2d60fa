"""``/batches/{id}/deliveries``: the completion webhooks of a batch and their delivery log."""

from __future__ import annotations

from typing import Any

from api.blueprint import Blueprint
from api.context import current_caller, runtime
from api.schemas.deliveries import DeliverySchema
from batchq.service.webhooks import batch_deliveries

blp = Blueprint("deliveries", __name__, url_prefix="/batches",
                description="Completion webhooks: what was sent where, and what came back")


@blp.route("/<batch_id>/deliveries")
@blp.response(200, DeliverySchema(many=True))
@blp.alt_response(401, description="No credential, or a wrong one (WWW-Authenticate names the "
                                   "schemes)")
@blp.alt_response(404, description="No such batch, or not one you may read")
def deliveries(batch_id: str) -> list[dict[str, Any]]:
    """List a batch's completion webhooks, each with every attempt made"""
    return batch_deliveries(runtime(), current_caller(), batch_id)
