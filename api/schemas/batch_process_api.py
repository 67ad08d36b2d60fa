"""Schemas of the batch-process API (``/systemtools/v1``): the BatchProcess resource in its
``{"data": {"attributes": {...}}}`` envelope, and its error body.

Which fields appear depends on the type's last run (never run, running, completed)
and on the endpoint (``processId`` only in a start that started a run,
``wasStopped`` only in a stop), so every field is optional here and the views
leave out what the document says is absent.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from api.schemas.common import WorkQueueStatusSchema
from api.vendor_blueprint import as_utc


class MillisecondTime(fields.Field):
    """A time as the document writes it: ``2022-09-19T17:30:00.021Z``."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        shown = as_utc(value)
        return None if shown is None else shown.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"


class SystemToolsTypeSchema(Schema):
    code = fields.Str(metadata={"description": "The BatchProcessType (case-sensitive)"})
    name = fields.Str()


class SystemToolsStatusSchema(Schema):
    """The last run: failureReason and type only if it never ran; opsExpected and progress
    while it runs; dateCompleted once it finished."""

    type = fields.Str()
    failure_reason = fields.Str(data_key="failureReason")
    date_created = MillisecondTime(data_key="dateCreated")
    start_date = MillisecondTime(data_key="startDate")
    date_completed = MillisecondTime(data_key="dateCompleted")
    ops_expected = fields.Int(data_key="opsExpected")
    ops_completed = fields.Int(data_key="opsCompleted")
    failed_ops = fields.Int(data_key="failedOps")
    progress = fields.Str(metadata={"description": '"1 out of 3": pages done out of pages'})
    server_id = fields.Str(data_key="serverId")


class SystemToolsBatchProcessSchema(Schema):
    """The BatchProcess resource."""

    type = fields.Nested(SystemToolsTypeSchema)
    status = fields.Nested(SystemToolsStatusSchema)
    distributed = fields.Bool()
    work_queue_status = fields.Nested(WorkQueueStatusSchema, data_key="workQueueStatus",
                                      metadata={"description": "Distributed processes only"})
    process_id = fields.Str(data_key="processId", metadata={
        "description": "Only in the answer of a start that started a run"})
    was_stopped = fields.Bool(data_key="wasStopped",
                              metadata={"description": "Only in the answer of a stop"})


class SystemToolsResourceSchema(Schema):
    attributes = fields.Nested(SystemToolsBatchProcessSchema, required=True)


class SystemToolsEnvelopeSchema(Schema):
    """``{"data": {"attributes": {...}}}``."""

    data = fields.Nested(SystemToolsResourceSchema, required=True)


class SystemToolsCollectionSchema(Schema):
    """``{"count": n, "data": [{"attributes": {...}}, ...]}``."""

    count = fields.Int(required=True)
    data = fields.List(fields.Nested(SystemToolsResourceSchema), required=True)


class SystemToolsStartAttributesSchema(Schema):
    class Meta:
        unknown = RAISE

    params = fields.Dict(load_default=dict,
                         metadata={"description": "The type's parameters, checked by its schema"})
    description = fields.Str(allow_none=True, validate=validate.Length(max=2000))


class SystemToolsStartDataSchema(Schema):
    class Meta:
        unknown = RAISE

    attributes = fields.Nested(SystemToolsStartAttributesSchema, load_default=dict)


class SystemToolsStartRequestSchema(Schema):
    """The optional body of a start: ``{"data": {"attributes": {"params": {...}}}}``."""

    class Meta:
        unknown = RAISE

    data = fields.Nested(SystemToolsStartDataSchema, load_default=dict)


class SystemToolsErrorDetailSchema(Schema):
    message = fields.Str()
    properties = fields.Dict()


class SystemToolsBatchProcessErrorSchema(Schema):
    """The error body: ``{"status", "errorCode", "userMessage", "details"}``."""

    status = fields.Int(required=True)
    error_code = fields.Str(data_key="errorCode", required=True,
                            metadata={"description": "gw.api.rest.exceptions.<Name>"})
    user_message = fields.Str(data_key="userMessage", required=True)
    details = fields.List(fields.Nested(SystemToolsErrorDetailSchema), required=True)
