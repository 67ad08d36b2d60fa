"""``/batch-types``: the batch-process registry, read side (the batch-process API)."""

from __future__ import annotations

from typing import Any

from api.blueprint import Blueprint
from api.context import current_caller, runtime
from api.presenters import registry_entry
from api.schemas.registry import BatchProcessListItemSchema, BatchProcessSchema
from batchq.domain.permissions import check_read_registry
from batchq.runtime import Runtime
from batchq.service import type_registry

NO_CREDENTIAL = "No credential, or a wrong one (WWW-Authenticate names the schemes)"
FORBIDDEN = ("The registry shows runs of every tenant: it needs ADMIN_BATCHES and "
             "ADMIN_VIEW_ALL_ORGANISATIONS, or a system user")

blp = Blueprint("batch_types", __name__, url_prefix="/batch-types",
                description="The batch-process registry: types and their last runs")


def _runtime() -> Runtime:
    check_read_registry(current_caller())
    return runtime()


@blp.route("")
@blp.response(200, BatchProcessListItemSchema(many=True))
@blp.alt_response(401, description=NO_CREDENTIAL)
@blp.alt_response(403, description=FORBIDDEN)
def list_batch_types() -> list[dict[str, Any]]:
    """List every registered batch type with its last run's status"""
    return [registry_entry(status) for status in type_registry.type_statuses(_runtime())]


@blp.route("/<code>")
@blp.response(200, BatchProcessSchema)
@blp.alt_response(401, description=NO_CREDENTIAL)
@blp.alt_response(403, description=FORBIDDEN)
@blp.alt_response(404, description="No type under that code (codes are case-sensitive)")
def get_batch_type(code: str) -> dict[str, Any]:
    """Read one batch type and its last run: never run, running, or finished"""
    return registry_entry(type_registry.type_status(_runtime(), code))
