"""Schemas of the CRM BatchTask API (``/api/v1/BatchTask``): BatchTaskInfo in its PascalCase
names, and the error body. XML bodies carry the same fields as elements of <BatchTaskInfo>."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

INT32 = validate.Range(min=-(2**31), max=2**31 - 1)
TEXT = validate.Length(max=2000)


class BatchTaskInfoInSchema(Schema):
    """The body of ``POST /api/v1/BatchTask``. Fields batchq computes (Id, State, progress,
    times, Result, FileName, ...) are accepted and ignored; unknown fields too."""

    class Meta:
        unknown = EXCLUDE
        # Values read from XML and form bodies are text: "254", "true".

    id = fields.Int(data_key="Id", allow_none=True, validate=INT32,
                    metadata={"description": "Ignored: batchq assigns the task's id"})
    name = fields.Str(data_key="Name", required=True, validate=validate.Length(min=1, max=200),
                      metadata={"description": "The batch type's code (case-sensitive)"})
    associate_id = fields.Int(data_key="AssociateId", allow_none=True, validate=INT32,
                              metadata={"description": "Ignored: the owner is the caller"})
    details_table = fields.Int(data_key="DetailsTable", allow_none=True, validate=INT32)
    details_record = fields.Int(data_key="DetailsRecord", allow_none=True, validate=INT32)
    is_system_task = fields.Bool(data_key="IsSystemTask", allow_none=True, metadata={
        "description": "True: the task belongs to no tenant (AssociateId 0)"})
    is_internal_task = fields.Bool(data_key="IsInternalTask", allow_none=True)
    parameter_object = fields.Dict(data_key="ParameterObject", allow_none=True, metadata={
        "description": "The batch's params; its Items list, if any, holds the items"})
    last_started = fields.Str(data_key="LastStarted", allow_none=True)
    created = fields.Str(data_key="Created", allow_none=True)
    start_count = fields.Int(data_key="StartCount", allow_none=True, validate=INT32)
    database_serial_number = fields.Str(data_key="DatabaseSerialNumber", allow_none=True,
                                        validate=TEXT)
    context = fields.Str(data_key="Context", allow_none=True, validate=TEXT)
    result = fields.Str(data_key="Result", allow_none=True)
    state = fields.Str(data_key="State", allow_none=True)
    description = fields.Str(data_key="Description", allow_none=True, validate=TEXT)
    response = fields.Str(data_key="Response", allow_none=True)
    request = fields.Str(data_key="Request", allow_none=True, validate=TEXT)
    progress_description = fields.Str(data_key="ProgressDescription", allow_none=True)
    progress_percent = fields.Int(data_key="ProgressPercent", allow_none=True, validate=INT32)
    file_name = fields.Str(data_key="FileName", allow_none=True)
    cancellation_behaviour = fields.Str(data_key="CancellationBehaviour", allow_none=True)


class BatchTaskInfoSchema(Schema):
    """BatchTaskInfo as ``GET /api/v1/BatchTask/{id}`` answers it: every field, null if unset."""

    id = fields.Int(data_key="Id", required=True)
    name = fields.Str(data_key="Name", required=True)
    associate_id = fields.Int(data_key="AssociateId", required=True)
    details_table = fields.Int(data_key="DetailsTable", required=True)
    details_record = fields.Int(data_key="DetailsRecord", required=True)
    is_system_task = fields.Bool(data_key="IsSystemTask", required=True)
    is_internal_task = fields.Bool(data_key="IsInternalTask", required=True)
    parameter_object = fields.Dict(data_key="ParameterObject", required=True)
    last_started = fields.Str(data_key="LastStarted", allow_none=True, required=True)
    created = fields.Str(data_key="Created", required=True)
    start_count = fields.Int(data_key="StartCount", required=True)
    database_serial_number = fields.Str(data_key="DatabaseSerialNumber", allow_none=True,
                                        required=True)
    context = fields.Str(data_key="Context", allow_none=True, required=True)
    result = fields.Str(data_key="Result", allow_none=True, required=True)
    state = fields.Str(data_key="State", required=True, metadata={"enum": [
        "Starting", "Started", "Idle", "Finished", "Cancelling", "Cancelled", "Failed"]})
    description = fields.Str(data_key="Description", allow_none=True, required=True)
    response = fields.Str(data_key="Response", allow_none=True, required=True)
    request = fields.Str(data_key="Request", allow_none=True, required=True)
    progress_description = fields.Str(data_key="ProgressDescription", required=True)
    progress_percent = fields.Int(data_key="ProgressPercent", required=True)
    file_name = fields.Str(data_key="FileName", allow_none=True, required=True)
    cancellation_behaviour = fields.Str(data_key="CancellationBehaviour", required=True,
                                        metadata={"enum": ["CanCancel", "CannotCancel"]})


class CrmErrorSchema(Schema):
    """The error body."""

    error = fields.Str(data_key="Error", required=True)
    error_type = fields.Str(data_key="ErrorType", required=True,
                            metadata={"description": "e.g. NotFound, BadRequest"})
