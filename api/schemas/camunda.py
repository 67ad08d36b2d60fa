"""Schemas of the Camunda 7 batch REST API (``/engine-rest``): its query parameters, its batch,
statistics and historic batch objects, and its error body, in Camunda's names."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from api.schemas.common import JsonBody
from api.vendor_blueprint import as_utc, naive_utc
from batchq.domain.lists import MAX_RESULTS

#: The most tenant ids one tenantIdIn may name.
MAX_TENANTS = 1000
#: Camunda's date format: yyyy-MM-dd'T'HH:mm:ss.SSSZ, e.g. 2013-01-23T14:42:45.000+0200.
CAMUNDA_FORMAT = "%Y-%m-%dT%H:%M:%S.%f%z"


def camunda_time(value: datetime | None) -> str | None:
    """A stored time in Camunda's format, milliseconds and a +0000 offset."""
    shown = as_utc(value)
    if shown is None:
        return None
    text = shown.strftime(CAMUNDA_FORMAT)  # microseconds, then +0000
    return text[:23] + text[26:]


class CamundaDateTime(fields.Field):
    """A time in Camunda's format (ISO 8601 with or without an offset; none means UTC)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return camunda_time(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        try:
            return naive_utc(datetime.fromisoformat(str(value)))
        except ValueError:
            raise ValidationError(
                f"Cannot convert value '{value}' to a date: use yyyy-MM-dd'T'HH:mm:ss.SSSZ, "
                "e.g. 2013-01-23T14:42:45.000+0200") from None


class TenantIdIn(fields.List):
    """``tenantIdIn``: a comma list, repeated parameters, or both (``a,b&tenantIdIn=c``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(fields.Str(validate=validate.Length(max=200)), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any,
                     **kwargs: Any) -> list[Any | None]:
        given = super()._deserialize(value, attr, data, **kwargs)
        tenants: list[Any | None] = [part.strip() for text in given
                                     for part in str(text).split(",")]
        if not all(tenants):
            raise ValidationError("Cannot set query parameter 'tenantIdIn': empty tenant id")
        if len(tenants) > MAX_TENANTS:
            raise ValidationError(f"Cannot set query parameter 'tenantIdIn': more than "
                                  f"{MAX_TENANTS} tenant ids")
        return tenants


class _Query(Schema):
    """The filters of every batch query; unknown parameters are ignored, as Camunda does."""

    class Meta:
        unknown = EXCLUDE

    batch_id = fields.Str(data_key="batchId")
    type = fields.Str()
    tenant_id_in = TenantIdIn(data_key="tenantIdIn", metadata={
        "description": "Comma list and/or repeated parameters"})
    without_tenant_id = fields.Bool(data_key="withoutTenantId", load_default=False)
    suspended = fields.Bool()


class _Sorted(Schema):
    """sortBy, sortOrder (each needs the other) and the window firstResult, maxResults."""

    SORT_KEYS: tuple[str, ...] = ("batchId", "tenantId")

    sort_order = fields.Str(data_key="sortOrder", validate=validate.OneOf(["asc", "desc"]))
    first_result = fields.Int(data_key="firstResult", load_default=0,
                              validate=validate.Range(min=0, max=2**31 - 1))
    max_results = fields.Int(data_key="maxResults", load_default=MAX_RESULTS,
                             validate=validate.Range(min=0, max=MAX_RESULTS), metadata={
                                 "description": f"At most {MAX_RESULTS} (the default)"})

    @validates_schema
    def sort_needs_both(self, data: dict[str, Any], **_: Any) -> None:
        if ("sort_by" in data) != ("sort_order" in data):
            raise ValidationError("Only a single sorting parameter specified. sortBy and "
                                  "sortOrder required", "sortBy")


class CamundaBatchCountQuerySchema(_Query):
    """``GET /batch/count``."""


class CamundaBatchQuerySchema(_Query, _Sorted):
    """``GET /batch``."""

    sort_by = fields.Str(data_key="sortBy", validate=validate.OneOf(["batchId", "tenantId"]))


class CamundaStatisticsCountQuerySchema(_Query):
    """``GET /batch/statistics/count``."""

    created_by = fields.Str(data_key="createdBy")
    started_before = CamundaDateTime(data_key="startedBefore")
    started_after = CamundaDateTime(data_key="startedAfter")
    with_failures = fields.Bool(data_key="withFailures")
    without_failures = fields.Bool(data_key="withoutFailures")


class CamundaStatisticsQuerySchema(CamundaStatisticsCountQuerySchema, _Sorted):
    """``GET /batch/statistics``."""

    sort_by = fields.Str(data_key="sortBy",
                         validate=validate.OneOf(["batchId", "tenantId", "startTime"]))


class CamundaHistoryCountQuerySchema(_Query):
    """``GET /history/batch/count``."""

    completed = fields.Bool(metadata={"description": "true: ended batches; false: running"})


class CamundaHistoryQuerySchema(CamundaHistoryCountQuerySchema, _Sorted):
    """``GET /history/batch``."""

    sort_by = fields.Str(data_key="sortBy", validate=validate.OneOf(
        ["batchId", "startTime", "endTime", "tenantId", "removalTime"]))


class CamundaDeleteQuerySchema(Schema):
    """``DELETE /batch/{id}``."""

    class Meta:
        unknown = EXCLUDE

    cascade = fields.Bool(load_default=False, metadata={
        "description": "Accepted; the batch's history stays until its retention ends"})


class CamundaSuspendedSchema(JsonBody):
    """``PUT /batch/{id}/suspended``."""

    suspended = fields.Bool(required=True)


class CamundaCountSchema(Schema):
    count = fields.Int(required=True)


class _JobDefinitions(Schema):
    id = fields.Str(required=True)
    type = fields.Str(required=True)
    total_jobs = fields.Int(data_key="totalJobs", required=True)
    batch_jobs_per_seed = fields.Int(data_key="batchJobsPerSeed", required=True)
    invocations_per_batch_job = fields.Int(data_key="invocationsPerBatchJob", required=True)
    seed_job_definition_id = fields.Str(data_key="seedJobDefinitionId", required=True)
    monitor_job_definition_id = fields.Str(data_key="monitorJobDefinitionId", required=True)
    batch_job_definition_id = fields.Str(data_key="batchJobDefinitionId", required=True)
    tenant_id = fields.Str(data_key="tenantId", allow_none=True, required=True)
    create_user_id = fields.Str(data_key="createUserId", allow_none=True, required=True)


class CamundaBatchSchema(_JobDefinitions):
    """A runtime batch, every field present (null when unknown)."""

    jobs_created = fields.Int(data_key="jobsCreated", required=True)
    suspended = fields.Bool(required=True)


class CamundaBatchStatisticsSchema(CamundaBatchSchema):
    """A runtime batch with its job counts."""

    remaining_jobs = fields.Int(data_key="remainingJobs", required=True)
    completed_jobs = fields.Int(data_key="completedJobs", required=True)
    failed_jobs = fields.Int(data_key="failedJobs", required=True)
    start_time = CamundaDateTime(data_key="startTime", allow_none=True, required=True)
    execution_start_time = CamundaDateTime(data_key="executionStartTime", allow_none=True,
                                           required=True)


class CamundaHistoricBatchSchema(_JobDefinitions):
    """A batch in the history: running (endTime null) or ended."""

    start_time = CamundaDateTime(data_key="startTime", allow_none=True, required=True)
    end_time = CamundaDateTime(data_key="endTime", allow_none=True, required=True)
    removal_time = CamundaDateTime(data_key="removalTime", allow_none=True, required=True)


class CamundaErrorSchema(Schema):
    """Camunda's error body."""

    type = fields.Str(required=True, metadata={"description": "e.g. InvalidRequestException"})
    message = fields.Str(required=True)
