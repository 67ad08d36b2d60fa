"""The registry batch API at ``/registry-api/batch``: postJob, jobStatus, multi-tenant postJob.

A job is a batch of ``BATCHQ_REGISTRY_TYPE`` whose items are the posted
entities, staged Block, Chain, Wholesaler, Customer (a kind's pages start once
the kinds before it are done). The correlation id is the batch id. Its denial
rules are batchq's creation rules (repeated, empty, too many, refused items),
with ``BATCHQ_REGISTRY_MAX_ITEMS`` as the document's NoOfItems; its code of
conduct, one active job per user, is ``BATCHQ_REGISTRY_MAX_ACTIVE_JOBS``.
See docs/vendor-apis/registry-api.md.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import Flask

from api.context import current_caller, runtime
from api.errors import TOO_MANY_ACTIVE, register_error_format
from api.schemas.registry_api import (
    RegistryCorrelationSchema,
    RegistryErrorSchema,
    RegistryJobStatusSchema,
    RegistryMultiTenantPostJobSchema,
    RegistryMultiTenantResultSchema,
    RegistryPostJobSchema,
    entity_item,
)
from api.vendor_blueprint import NO_CREDENTIAL, VendorBlueprint, json_error
from batchq.domain.lists import BatchFilter, Window
from batchq.domain.permissions import tenant_of_new_batch
from batchq.domain.statuses import ACTIVE_STATUSES, BatchStatus
from batchq.errors import InvalidBatch, QuotaExceeded
from batchq.runtime import Runtime
from batchq.service import item_reads, listing
from batchq.service.creation import NewBatch, create_batch
from batchq.service.multi_tenant import check_multi_tenant, create_for_tenants
from batchq.service.users import known_tenants
from batchq.storage.common import Row

PREFIX = "/registry-api"
DENIED = ("Denied: an entity repeats, the list is empty or over NoOfItems "
          "(BATCHQ_REGISTRY_MAX_ITEMS), or holds entities the API cannot interpret")
CONDUCT = ("Code of conduct: a user may have {limit} active batch job(s) at a time "
           "(BATCHQ_REGISTRY_MAX_ACTIVE_JOBS); poll jobStatus until yours completes")
#: The key of a job-level error in jobItemErrors (no entity failed, yet the job did not complete).
JOB_ERROR_KEY = "*"

blp = VendorBlueprint("registry-batch-api", __name__, url_prefix=PREFIX,
                      error_schema=RegistryErrorSchema,
                      description="The registry batch API (docs/vendor-apis/registry-api.md)")


def registry_error(status: int, message: str, details: dict[str, Any]) -> Any:
    """``{"message", "errors"}``: the refused fields or items, one line each."""
    errors = [f"{name}: {problem}" for name, problem in (details.get("fields") or {}).items()]
    errors += [f"entity {index}: {_text(problem)}"
               for index, problem in (details.get("itemErrors") or {}).items()]
    return json_error(status, {"message": message, "errors": errors})


def _text(problem: Any) -> str:
    return "; ".join(map(str, problem)) if isinstance(problem, list) else str(problem)


def register(app: Flask) -> None:
    """Answer errors under ``/registry-api`` in the registry API's shape."""
    register_error_format(app, PREFIX, registry_error)


def _items(entities: list[Any], limit: int) -> list[dict[str, Any]]:
    """The entities as items; raises ``InvalidBatch`` for a list the API would deny."""
    if len(entities) > limit:
        raise InvalidBatch(f"Denied: {len(entities)} entities exceed NoOfItems ({limit})",
                           {"noOfItems": limit})
    items = [entity_item(entity) for entity in entities]
    unreadable = [index for index, item in enumerate(items) if item is None]
    if unreadable:
        raise InvalidBatch(
            f"Denied: {len(unreadable)} entities cannot be interpreted (each needs a blockId, "
            "chainId, wholesalerId or customerId)",
            {"itemErrors": {str(index): "cannot be interpreted" for index in unreadable[:100]}})
    return [item for item in items if item is not None]


def _job_runtime(rt: Runtime, jobs: int) -> Runtime:
    """The runtime whose settings hold the registry's rules for posting ``jobs`` jobs."""
    settings = rt.settings
    rules: dict[str, Any] = {"max_items": min(settings.max_items, settings.registry_max_items)}
    if settings.registry_max_active_jobs:
        rules["max_active_batches_per_user"] = settings.registry_max_active_jobs + jobs - 1
    return dataclasses.replace(rt, settings=dataclasses.replace(settings, **rules))


def _room_for_jobs(rt: Runtime, wanted: int) -> int:
    """How many of ``wanted`` new jobs the code of conduct lets the caller post now: one
    multi-tenant post counts as one job, so all of them while the caller has room for one."""
    limit = rt.settings.registry_max_active_jobs
    if not limit:
        return wanted
    mine = BatchFilter(created_by=current_caller().name, finished=False)
    active = listing.count_batches(rt, current_caller(), mine)
    return wanted if active < limit else 0


def _code_of_conduct(exc: QuotaExceeded, rt: Runtime) -> QuotaExceeded:
    limit = rt.settings.registry_max_active_jobs
    return QuotaExceeded(CONDUCT.format(limit=limit), exc.details,
                         retry_after_seconds=exc.retry_after_seconds)


@blp.route("/batch/postJob", methods=["POST"])
@blp.arguments(RegistryPostJobSchema)
@blp.response(200, RegistryCorrelationSchema)
@blp.errors({400: DENIED, 401: NO_CREDENTIAL})
@blp.alt_response(429, **TOO_MANY_ACTIVE)
def post_job(body: dict[str, Any]) -> dict[str, str]:
    """Post a batch job; poll its status with the correlation id"""
    rt, caller = runtime(), current_caller()
    job_rt = _job_runtime(rt, 1)
    request = NewBatch(type=rt.settings.registry_type, creator=caller,
                       tenant_id=tenant_of_new_batch(caller, None, named=False))
    try:
        batch = create_batch(job_rt, request, _items(body["data"], job_rt.settings.max_items))
    except QuotaExceeded as exc:
        raise _code_of_conduct(exc, rt) from None
    return {"correlation_id": batch["id"]}


@blp.route("/batch/multiTenant/postJob", methods=["POST"])
@blp.arguments(RegistryMultiTenantPostJobSchema)
@blp.response(200, RegistryMultiTenantResultSchema, description="Every tenant got its job")
@blp.alt_response(207, schema=RegistryMultiTenantResultSchema,
                  description="Partial success: postedProblems says what stopped the others")
@blp.errors({400: DENIED, 401: NO_CREDENTIAL,
             403: "Needs an API key for a multi-tenant agency (the MULTI_TENANT function)"})
def post_multi_tenant_job(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Post the same batch job to several tenants; poll each tenant's job separately"""
    rt, caller = runtime(), current_caller()
    check_multi_tenant(caller)
    wanted = body["genero_tenant_ids"]
    known = known_tenants(rt.storage.users, wanted)
    problems = {tenant: [f"Unable to find tenant by identifier: {tenant}."]
                for tenant in wanted if tenant not in known}
    tenants = [tenant for tenant in wanted if tenant in known]
    room = _room_for_jobs(rt, len(tenants))
    problems.update({tenant: [CONDUCT.format(limit=rt.settings.registry_max_active_jobs)]
                     for tenant in tenants[room:]})
    job_rt = _job_runtime(rt, room)
    items = _items(body["data"], job_rt.settings.max_items)
    result = create_for_tenants(job_rt, caller, NewBatch(type=rt.settings.registry_type),
                                items, tenants[:room])
    problems.update(result.posted_problems)
    answer = {"posted_success": result.posted_success, "posted_problems": problems}
    return answer, 207 if problems else 200


@blp.route("/batch/jobStatus/<correlation_id>")
@blp.response(200, RegistryJobStatusSchema)
@blp.errors({401: NO_CREDENTIAL, 404: "No job with that correlation id you may read"})
def job_status(correlation_id: str) -> dict[str, Any]:
    """The status of a batch job: InProgress, Completed or CompletedWithErrors"""
    rt = runtime()
    batch = listing.check_access(rt, current_caller(), correlation_id)
    return {"correlation_id": batch["id"], "batch_job_status": job_status_of(batch),
            "no_of_items_posted": batch["total_items"],
            "no_of_items_processed": batch["processed_items"],
            "job_item_errors": _job_item_errors(rt, batch)}


def job_status_of(batch: Row) -> str:
    """InProgress while active; Completed without a failure; CompletedWithErrors otherwise
    (failed items, an abort, a cancel, a failed post-batch step)."""
    if batch["status"] in ACTIVE_STATUSES:
        return "InProgress"
    return "Completed" if batch["status"] == BatchStatus.COMPLETED else "CompletedWithErrors"


def _job_item_errors(rt: Runtime, batch: Row) -> dict[str, str]:
    """{entity id: message} of every failed entity (at most NoOfItems); a job that ended
    without completing but with no failed entity says why under ``*``."""
    errors: dict[str, str] = {}
    if batch["failed_items"]:
        _total, rows = item_reads.list_errors(rt, batch,
                                              Window(0, rt.settings.registry_max_items))
        errors = {row["key"]: row["message"] for row in rows}
    if not errors and job_status_of(batch) == "CompletedWithErrors":
        unprocessed = batch["total_items"] - batch["processed_items"]
        errors[JOB_ERROR_KEY] = batch["failure_reason"] or (
            f"The job ended {batch['status']}; {unprocessed} entities were not processed")
    return errors
