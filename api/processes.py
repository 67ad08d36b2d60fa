"""``/batch-types/{code}/start`` and ``/stop``: runs of batch processes (the batch-process API).

Starting and stopping a run, which works across all tenants, needs
ADMIN_BACKEND_SERVICES + ADMIN_BATCHES + ADMIN_EDIT_ALL_ORGANISATIONS (or a
system user). Codes are case-sensitive; an unknown code is 404.
"""

from __future__ import annotations

from typing import Any

from api.blueprint import Blueprint
from api.context import current_caller, runtime
from api.schemas.registry import ProcessStartedSchema, ProcessStartSchema, ProcessStoppedSchema
from batchq.service import processes

NO_CREDENTIAL = "No credential, or a wrong one (WWW-Authenticate names the schemes)"
FORBIDDEN = ("You need the functions the type's start_requires names; by default "
             "ADMIN_BACKEND_SERVICES, ADMIN_BATCHES and ADMIN_EDIT_ALL_ORGANISATIONS (or a "
             "system user)")

blp = Blueprint("batch_processes", __name__, url_prefix="/batch-types",
                description="Batch processes: start and stop runs of types with a source")


@blp.route("/<code>/start", methods=["POST"])
@blp.arguments(ProcessStartSchema, required=False)
@blp.response(201, ProcessStartedSchema)
@blp.alt_response(400, description="Params the type's schema refuses, or a malformed body")
@blp.alt_response(401, description=NO_CREDENTIAL)
@blp.alt_response(403, description=FORBIDDEN)
@blp.alt_response(404, description="No batch type with that code (codes are case-sensitive)")
@blp.alt_response(409, description="A run is already active (details.processId names it), "
                                   "or the type has no source to start from")
def start(body: dict[str, Any], code: str) -> dict[str, Any]:
    """Start a run of a batch process: a batch whose type finds its own items"""
    run = processes.start_process(runtime(), code, by=current_caller(),
                                  params=body.get("params"),
                                  description=body.get("description"))
    return {"process_id": run["id"]}


@blp.route("/<code>/stop", methods=["POST"])
@blp.response(200, ProcessStoppedSchema)
@blp.alt_response(401, description=NO_CREDENTIAL)
@blp.alt_response(403, description=FORBIDDEN)
@blp.alt_response(404, description="No batch type with that code (codes are case-sensitive)")
@blp.alt_response(409, description="The type's runs cannot be cancelled")
def stop(code: str) -> dict[str, bool]:
    """Stop the active run of a batch process (drain: running pages finish)"""
    return {"was_stopped": processes.stop_process(runtime(), code, by=current_caller())}
