"""The media-archive batch API at ``/media-archive/batches/``: create, list, read, change, cancel.

batchq's native API was modelled on this one (its nine statuses, permission
tiers, drain-style cancel, 30-day cleanup), so the adapter is the thinnest: the
native schemas and error shape, the archive's trailing slashes, the status
spelling ``Cancellling`` accepted as input, a ``cleanupDate``, and the system-user
rule (a system user's batch runs across all indices). See docs/vendor-apis/media-archive.md.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from api.context import current_caller, runtime
from api.errors import TOO_MANY_ACTIVE, ErrorSchema
from api.idempotency import idempotent
from api.presenters import batch_view
from api.schemas.media_archive import (
    MediaArchiveBatchSchema,
    MediaArchiveListItemSchema,
    MediaArchivePatchSchema,
    MediaArchiveQuerySchema,
)
from api.uploads import QUERY_PARAMETERS, REQUEST_BODY, read_create_request
from api.vendor_blueprint import NO_CREDENTIAL, VendorBlueprint
from batchq.domain.lists import BatchFilter, BatchOrder, Window
from batchq.domain.permissions import Caller, tenant_of_new_batch
from batchq.domain.statuses import BatchStatus
from batchq.errors import InvalidBatch
from batchq.service import control, listing
from batchq.service.creation import NewBatch, create_batch
from batchq.storage.common import Row

PREFIX = "/media-archive"
_OPTIONS = ("description", "page_size", "jobs_per_seed", "failure_threshold", "retention_days")
NOT_YOURS = "No such batch, or not one you may read"

blp = VendorBlueprint("media-archive-batch-api", __name__, url_prefix=PREFIX,
                      error_schema=ErrorSchema,
                      description="The media-archive batch API (docs/vendor-apis/media-archive.md)")


def register(app: Flask) -> None:
    """The media-archive API answers errors in batchq's own shape: nothing to register."""


def archive_view(batch_id: str, batch: Row | None = None) -> dict[str, Any]:
    """The batch as batchq shows it, with the date the cleanup deletes it."""
    shown = batch_view(control.batch_details(runtime(), batch_id, batch))
    return {**shown, "cleanup_date": shown.get("expires_at")}


def tenant_of(caller: Caller, body: dict[str, Any]) -> str | None:
    """The index a new batch runs on: the caller's, or the one named; a system user's batch
    names none, so it runs across all indices (it is system-wide)."""
    if "tenant_id" not in body and caller.is_system:
        return None
    return tenant_of_new_batch(caller, body.get("tenant_id"), "tenant_id" in body)


@blp.route("/batches/", methods=["POST"], strict_slashes=False)
@idempotent(blp, lambda batch_id: MediaArchiveBatchSchema().dump(archive_view(batch_id)))
@blp.doc(requestBody=REQUEST_BODY, parameters=QUERY_PARAMETERS)
@blp.response(201, MediaArchiveBatchSchema)
@blp.errors({400: "Refused items, with their indexes", 401: NO_CREDENTIAL,
             403: "You may not create batches for that index",
             413: "More items than BATCHQ_MAX_ITEMS, or a body over BATCHQ_MAX_BODY_MB",
             415: "A Content-Type other than JSON, NDJSON or CSV"})
@blp.alt_response(429, **TOO_MANY_ACTIVE)
def create(**_: Any) -> dict[str, Any]:
    """Create a batch (POST batches/)"""
    body = read_create_request(blp.ARGUMENTS_PARSER)
    caller = current_caller()
    request = NewBatch(type=body["type"], params=body["params"],
                       tenant_id=tenant_of(caller, body), creator=caller,
                       url_params=body.get("url_params", frozenset()),
                       **{name: body[name] for name in _OPTIONS if name in body})
    return archive_view(create_batch(runtime(), request, body["items"])["id"])


@blp.route("/batches/", strict_slashes=False)
@blp.arguments(MediaArchiveQuerySchema, location="query", unknown="raise")
@blp.response(200, MediaArchiveListItemSchema(many=True))
@blp.errors({400: "An unknown filter or sort, or sortBy without sortOrder",
             401: NO_CREDENTIAL})
def list_batches(args: dict[str, Any]) -> list[dict[str, Any]]:
    """List the batches you may read (GET batches/): own, organisation's, or all indices'"""
    wanted = BatchFilter(batch_id=args.get("batch_id"), type=args.get("type"),
                         status=args.get("status"), tenant_ids=args.get("tenant_id_in"),
                         without_tenant=args["without_tenant_id"],
                         suspended=args.get("suspended"), created_by=args.get("created_by"))
    order = BatchOrder(args.get("sort_by"), args.get("sort_order") == "desc")
    found = listing.list_batches(runtime(), current_caller(), wanted, order,
                                 Window(args["first_result"], args["max_results"]))
    return [{**batch, "cleanup_date": batch["expires_at"]} for batch in found]


@blp.route("/batches/<batch_id>", strict_slashes=False)
@blp.response(200, MediaArchiveBatchSchema)
@blp.errors({401: NO_CREDENTIAL, 404: NOT_YOURS})
def get_batch(batch_id: str) -> dict[str, Any]:
    """Read a batch"""
    return archive_view(batch_id, listing.check_access(runtime(), current_caller(), batch_id))


@blp.route("/batches/<batch_id>", methods=["PATCH"], strict_slashes=False)
@blp.arguments(MediaArchivePatchSchema)
@blp.response(200, MediaArchiveBatchSchema)
@blp.errors({400: "Nothing to change, or a status other than Cancelling",
             401: NO_CREDENTIAL, 403: "Needs ADMIN_BACKEND_SERVICES (+ ADMIN_BATCHES for "
             "the organisation's, + ADMIN_EDIT_ALL_ORGANISATIONS for other organisations')",
             404: NOT_YOURS, 409: "The batch already finished",
             415: "A body that is not application/json"})
def patch_batch(body: dict[str, Any], batch_id: str) -> dict[str, Any]:
    """Partially update a batch: suspended, description, or status Cancelling"""
    listing.check_access(runtime(), current_caller(), batch_id, change=True)
    changes: dict[str, Any] = {name: body[name] for name in ("suspended", "description")
                               if name in body}
    if "status" in body:
        _check_cancelling(body["status"])
    if changes or "status" not in body:
        control.change_batch(runtime(), batch_id, changes)
    if "status" in body:
        control.cancel_batch(runtime(), batch_id)
    return archive_view(batch_id)


def _check_cancelling(status: str) -> None:
    if status != BatchStatus.CANCELLING:
        raise InvalidBatch(f"status can only be set to Cancelling (a cancel), not {status}",
                           {"field": "status"})


@blp.route("/batches/<batch_id>", methods=["DELETE"], strict_slashes=False)
@blp.response(202, MediaArchiveBatchSchema)
@blp.errors({401: NO_CREDENTIAL, 403: "Needs the same functions as PATCH",
             404: NOT_YOURS, 409: "Already finished, or its type cannot be cancelled"})
def cancel(batch_id: str) -> dict[str, Any]:
    """Cancel a batch (DELETE batches/): Cancelling until running jobs finish, then Cancelled"""
    listing.check_access(runtime(), current_caller(), batch_id, change=True)
    control.cancel_batch(runtime(), batch_id)
    return archive_view(batch_id)
