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
from batchq.domain.retry_policy import BACKOFFS, MAX_ATTEMPTS, MAX_DELAY_SECONDS
from batchq.domain.run_windows import MAX_WINDOWS
from batchq.domain.statuses import BatchStatus
from batchq.domain.throttling import (
    MAX_CONCURRENT_JOBS,
    MAX_ITEMS_PER_SECOND,
    MIN_ITEMS_PER_SECOND,
)
from batchq.service.creation import MAX_CALLBACK_URL_CHARS, MAX_RETENTION_DAYS
from batchq.service.retry_batches import SELECTIONS


class ItemList(fields.Field):
    """A JSON array of items, passed through as it is.

    Each element is either ``{"key", "payload", "stage"?}`` or a bare payload;
    batchq checks them one by one and reports the offending indexes.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if not isinstance(value, list):
            raise ValidationError("items must be a JSON array")
        return value


class RetryPolicySchema(JsonBody):
    """An item retry policy's numbers: ``retryPolicy`` of ``POST /batches``, loaded under their
    REST names, as ``batchq.domain.retry_policy`` takes them."""

    class Meta:
        unknown = RAISE

    max_attempts = fields.Int(data_key="maxAttempts", attribute="maxAttempts", strict=True,
                              validate=validate.Range(min=1, max=MAX_ATTEMPTS), metadata={
                                  "description": "Runs of a transiently failing item, the "
                                                 "first included (1: never retried)"})
    backoff = fields.Str(validate=validate.OneOf(BACKOFFS))
    delay_seconds = fields.Float(data_key="delaySeconds", attribute="delaySeconds",
                                 validate=validate.Range(min=0, max=MAX_DELAY_SECONDS),
                                 metadata={"description": "The wait before the first retry"})
    max_delay_seconds = fields.Float(data_key="maxDelaySeconds", attribute="maxDelaySeconds",
                                     validate=validate.Range(min=0, max=MAX_DELAY_SECONDS))
    jitter = fields.Bool(metadata={"description": "Draw each wait from the upper half of it"})


class RunWindowSchema(Schema):
    """One run window: ``{"days": "Mon-Fri", "from": "22:00", "to": "06:00",
    "timezone": "Europe/Berlin"}``; batchq checks its values and names what is wrong."""

    class Meta:
        unknown = RAISE

    days = fields.Str(validate=validate.Length(max=100), metadata={
        "description": '"Mon-Fri", "Sat,Sun", "Fri-Mon" or "*" (default: every day)'})
    from_ = fields.Str(data_key="from", attribute="from", required=True,
                       validate=validate.Length(max=8),
                       metadata={"description": 'Local opening time, "HH:MM"'})
    to = fields.Str(required=True, validate=validate.Length(max=8), metadata={
        "description": 'Local closing time, "HH:MM"; not after "from": the next day'})
    timezone = fields.Str(validate=validate.Length(max=100),
                          metadata={"description": "IANA time zone (default UTC)"})


def run_windows_field() -> fields.List:
    """``runWindows``: a list of ``RunWindowSchema``."""
    return fields.List(fields.Nested(RunWindowSchema), data_key="runWindows", allow_none=True,
                       validate=validate.Length(max=MAX_WINDOWS), metadata={
                           "description": "Pages start only inside one of these windows; "
                                          "[] or null: at any time"})


def items_per_second_field() -> fields.Float:
    """``maxItemsPerSecond``."""
    return fields.Float(
        data_key="maxItemsPerSecond", allow_none=True,
        validate=validate.Range(min=MIN_ITEMS_PER_SECOND, max=MAX_ITEMS_PER_SECOND),
        metadata={"description": "Items started per second across all workers; null: no "
                                 "limit (or the tenant's cap)"})


def concurrent_jobs_field() -> fields.Int:
    """``maxConcurrentJobs``."""
    return fields.Int(
        data_key="maxConcurrentJobs", allow_none=True, strict=True,
        validate=validate.Range(min=1, max=MAX_CONCURRENT_JOBS),
        metadata={"description": "Pages of this batch running at once; null: no limit"})


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
    retry_policy = fields.Nested(RetryPolicySchema, data_key="retryPolicy", metadata={
        "description": "Overrides the numbers of the type's item retry policy"})
    run_windows = run_windows_field()
    max_items_per_second = items_per_second_field()
    max_concurrent_jobs = concurrent_jobs_field()


class BatchPatchSchema(JsonBody):
    """``PATCH /batches/{id}``: suspend or resume, describe, rethrottle, re-window."""

    suspended = fields.Bool()
    description = fields.Str(allow_none=True, validate=validate.Length(max=2000))
    run_windows = run_windows_field()
    max_items_per_second = items_per_second_field()
    max_concurrent_jobs = concurrent_jobs_field()


class RetryRequestSchema(JsonBody):
    """``POST /batches/{id}/retry``."""

    items = fields.Str(required=True, validate=validate.OneOf(list(SELECTIONS)), metadata={
        "description": "Which items of the finished batch the new batch holds"})
    description = fields.Str(allow_none=True, validate=validate.Length(max=2000), metadata={
        "description": "Default: which items of which batch it retries"})


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
    retry_of = fields.Str(data_key="retryOf", allow_none=True, metadata={
        "description": "The batch whose items this retry batch retries (POST "
                       "/batches/{id}/retry), else null"})
    retry_selection = fields.Str(data_key="retryItems", allow_none=True, metadata={
        "description": "Which items of retryOf it holds: failed, unprocessed or "
                       "failed+unprocessed"})
    retries = fields.List(fields.Str(), metadata={
        "description": "The ids of this batch's retry batches, oldest first"})
    retry_policy = fields.Dict(data_key="retryPolicy", allow_none=True, metadata={
        "description": "The item retry policy in force: maxAttempts, backoff, delaySeconds, "
                       "maxDelaySeconds, jitter"})
    max_items_per_second = fields.Float(data_key="maxItemsPerSecond", allow_none=True)
    max_concurrent_jobs = fields.Int(data_key="maxConcurrentJobs", allow_none=True)
    run_windows = fields.List(fields.Dict(), data_key="runWindows", allow_none=True)
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
    batch_id_prefix = fields.Str(data_key="batchIdPrefix", validate=validate.Length(min=1, max=36),
                                 metadata={"description": "Batches whose id starts with this "
                                                          "(a short id)"})


class BatchQuerySchema(BatchFilterSchema):
    """``GET /batches``: the filters, a sort and a page."""

    sort_by = fields.Str(data_key="sortBy", validate=validate.OneOf(list(SORT_KEYS)))
    sort_order = fields.Str(data_key="sortOrder", validate=validate.OneOf(["asc", "desc"]))
    first_result = fields.Int(data_key="firstResult", load_default=0,
                              validate=validate.Range(min=0, max=2**31 - 1))
    max_results = fields.Int(data_key="maxResults", load_default=100,
                             validate=validate.Range(min=1, max=MAX_RESULTS))
    after_key = fields.Str(data_key="afterKey", validate=validate.Length(min=1, max=36),
                           metadata={"description": "A cursor: the id of the last batch of the "
                                                    "previous answer; the list goes on after "
                                                    "it, in the same sort (not with "
                                                    "firstResult)"})

    @validates_schema
    def sort_needs_both(self, data: dict[str, Any], **_: Any) -> None:
        if ("sort_by" in data) != ("sort_order" in data):
            raise ValidationError("sortBy and sortOrder must be given together",
                                  "sortBy" if "sort_order" in data else "sortOrder")

    @validates_schema
    def one_way_to_page(self, data: dict[str, Any], **_: Any) -> None:
        if "after_key" in data and data.get("first_result"):
            raise ValidationError("afterKey and firstResult page in two ways: send one",
                                  "afterKey")


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
    retry_of = fields.Str(data_key="retryOf", allow_none=True)
