"""Schemas of ``/batches``: creating, listing, reading and changing batches."""

from __future__ import annotations

from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    pre_dump,
    validate,
    validates_schema,
)

from api.schemas.common import CommaList, JsonBody, UtcDateTime, WorkQueueStatusSchema
from batchq.domain.lists import MAX_RESULTS, SORT_KEYS
from batchq.domain.statuses import BatchStatus
from batchq.service.creation import MAX_CALLBACK_URL_CHARS, MAX_RETENTION_DAYS


class ItemList(fields.Field):
    """A JSON array of items, passed through as it is.

    Each element is either ``{"key", "payload", "stage"?}`` or a bare payload;
    batchq checks them one by one and reports the offending indexes.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if not isinstance(value, list):
            raise ValidationError("items must be a JSON array")
        return value


class BatchCreateSchema(JsonBody):
    """``POST /batches``."""

    type = fields.Str(required=True, validate=validate.Length(min=1, max=200),
                      metadata={"description": "The batch type's code (case-sensitive)"})
    items = ItemList(required=True, metadata={
        "type": "array", "items": {},
        "description": 'Items: {"key", "payload", "stage"?} objects or bare payloads'})
    params = fields.Dict(load_default=dict, metadata={"description": "The type's parameters"})
    description = fields.Str(allow_none=True, validate=validate.Length(max=2000))
    tenant_id = fields.Str(data_key="tenantId", allow_none=True,
                           validate=validate.Length(min=1, max=200))
    page_size = fields.Int(data_key="pageSize", validate=validate.Range(min=1, max=100_000))
    jobs_per_seed = fields.Int(data_key="jobsPerSeed", validate=validate.Range(min=1, max=10_000))
    failure_threshold = fields.Float(
        data_key="failureThreshold", allow_none=True,
        validate=validate.Range(min=0, max=1, min_inclusive=False),
        metadata={"description": "Abort when failed/processed reaches it; null disables"})
    retention_days = fields.Int(data_key="retentionDays",
                                validate=validate.Range(min=1, max=MAX_RETENTION_DAYS))
    callback_url = fields.Url(
        data_key="callbackUrl", allow_none=True, schemes={"http", "https"}, require_tld=False,
        validate=validate.Length(max=MAX_CALLBACK_URL_CHARS), metadata={
            "description": "Where the signed completion webhooks go (default: the type's); "
                           "null for none. Refused if the egress rule refuses its host"})


class BatchPatchSchema(JsonBody):
    """``PATCH /batches/{id}``."""

    suspended = fields.Bool()
    description = fields.Str(allow_none=True, validate=validate.Length(max=2000))


class ResultFileInfoSchema(Schema):
    filename = fields.Str()
    media_type = fields.Str(data_key="mediaType")
    size = fields.Int(metadata={"description": "Bytes"})
    url = fields.Str(metadata={"description": "Where to download it"})


class BatchSchema(Schema):
    """A batch as ``GET /batches/{id}`` shows it."""

    id = fields.Str()
    type = fields.Str()
    status = fields.Str(validate=validate.OneOf([s.value for s in BatchStatus]))
    suspended = fields.Bool()
    tenant_id = fields.Str(data_key="tenantId", allow_none=True)
    create_user_id = fields.Str(data_key="createUserId", allow_none=True)
    description = fields.Str(allow_none=True)
    params = fields.Dict()
    total_items = fields.Int(data_key="totalItems")
    processed_items = fields.Int(data_key="processedItems")
    failed_items = fields.Int(data_key="failedItems")
    unprocessed_items = fields.Int(data_key="unprocessedItems")
    total_jobs = fields.Int(data_key="totalJobs")
    jobs_created = fields.Int(data_key="jobsCreated")
    jobs_completed = fields.Int(data_key="jobsCompleted")
    jobs_per_seed = fields.Int(data_key="jobsPerSeed")
    page_size = fields.Int(data_key="pageSize")
    failure_threshold = fields.Float(data_key="failureThreshold", allow_none=True)
    retention_days = fields.Int(data_key="retentionDays")
    callback_url = fields.Str(data_key="callbackUrl", allow_none=True, metadata={
        "description": "Where the completion webhooks go; GET /batches/{id}/deliveries logs them"})
    progress = fields.Str(metadata={"description": '"7 out of 20" jobs'})
    progress_percent = fields.Float(data_key="progressPercent")
    progress_description = fields.Str(data_key="progressDescription", allow_none=True, metadata={
        "description": "The handler's latest ItemContext.set_progress text while the batch "
                       "runs; otherwise a sentence batchq writes"})
    current_stage = fields.Int(data_key="currentStage", allow_none=True, metadata={
        "description": "Staged batches: the stage whose pages run now; null when not staged "
                       "or finished"})
    created_at = UtcDateTime(data_key="createdAt")
    started_at = UtcDateTime(data_key="startedAt", allow_none=True)
    finished_at = UtcDateTime(data_key="finishedAt", allow_none=True)
    failure_reason = fields.Str(data_key="failureReason", allow_none=True)
    result = fields.Raw(allow_none=True)
    cancellation_behaviour = fields.Str(data_key="cancellationBehaviour", metadata={
        "description": "CanCancel, or CannotCancel: DELETE answers 409 and the batch runs on"})
    result_file = fields.Nested(ResultFileInfoSchema, data_key="resultFile", allow_none=True,
                                metadata={"description": "The post-batch step's file, if any"})
    work_queue_status = fields.Nested(WorkQueueStatusSchema, data_key="workQueueStatus")
    item_errors = fields.Dict(keys=fields.Str(), values=fields.Str(), data_key="itemErrors",
                              metadata={"description": "{item key: message}, capped"})
    item_errors_truncated = fields.Bool(data_key="itemErrorsTruncated")
    # The Camunda 7 batch API's names, so a client written for that API reads a batch unchanged.
    batch_jobs_per_seed = fields.Int(data_key="batchJobsPerSeed")
    invocations_per_batch_job = fields.Int(data_key="invocationsPerBatchJob")
    seed_job_definition_id = fields.Str(data_key="seedJobDefinitionId")
    monitor_job_definition_id = fields.Str(data_key="monitorJobDefinitionId")
    batch_job_definition_id = fields.Str(data_key="batchJobDefinitionId")

    @pre_dump
    def add_camunda_names(self, batch: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {
            **batch,
            "batch_jobs_per_seed": batch["jobs_per_seed"],
            "invocations_per_batch_job": batch["page_size"],
            "seed_job_definition_id": f"{batch['id']}:seed",
            "monitor_job_definition_id": f"{batch['id']}:monitor",
            "batch_job_definition_id": f"{batch['id']}:execute",
        }


class BatchFilterSchema(Schema):
    """The filters of ``GET /batches`` and ``GET /batches/count``."""

    class Meta:
        unknown = RAISE

    batch_id = fields.Str(data_key="batchId")
    type = fields.Str()
    status = fields.Str(validate=validate.OneOf([s.value for s in BatchStatus]))
    tenant_id_in = CommaList(data_key="tenantIdIn", metadata={
        "description": "Comma list of tenants; with withoutTenantId, either matches"})
    without_tenant_id = fields.Bool(data_key="withoutTenantId", load_default=False)
    suspended = fields.Bool()
    created_by = fields.Str(data_key="createdBy", metadata={"description": "A user name"})


class BatchQuerySchema(BatchFilterSchema):
    """``GET /batches``: the filters, a sort and a page."""

    sort_by = fields.Str(data_key="sortBy", validate=validate.OneOf(list(SORT_KEYS)))
    sort_order = fields.Str(data_key="sortOrder", validate=validate.OneOf(["asc", "desc"]))
    first_result = fields.Int(data_key="firstResult", load_default=0,
                              validate=validate.Range(min=0, max=2**31 - 1))
    max_results = fields.Int(data_key="maxResults", load_default=100,
                             validate=validate.Range(min=1, max=MAX_RESULTS))

    @validates_schema
    def sort_needs_both(self, data: dict[str, Any], **_: Any) -> None:
        if ("sort_by" in data) != ("sort_order" in data):
            raise ValidationError("sortBy and sortOrder must be given together",
                                  "sortBy" if "sort_order" in data else "sortOrder")


class BatchCountSchema(Schema):
    """``GET /batches/count``."""

    count = fields.Int(required=True)


class BatchListItemSchema(Schema):
    """A batch as ``GET /batches`` lists it; ``GET /batches/{id}`` has the rest."""

    id = fields.Str()
    type = fields.Str()
    status = fields.Str()
    suspended = fields.Bool()
    tenant_id = fields.Str(data_key="tenantId", allow_none=True)
    create_user_id = fields.Str(data_key="createUserId", allow_none=True)
    description = fields.Str(allow_none=True)
    total_items = fields.Int(data_key="totalItems")
    processed_items = fields.Int(data_key="processedItems")
    failed_items = fields.Int(data_key="failedItems")
    total_jobs = fields.Int(data_key="totalJobs")
    jobs_created = fields.Int(data_key="jobsCreated")
    jobs_completed = fields.Int(data_key="jobsCompleted")
    created_at = UtcDateTime(data_key="createdAt")
    started_at = UtcDateTime(data_key="startedAt", allow_none=True)
    finished_at = UtcDateTime(data_key="finishedAt", allow_none=True)
    failure_reason = fields.Str(data_key="failureReason", allow_none=True)
