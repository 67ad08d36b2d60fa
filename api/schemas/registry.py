"""Schemas of ``/batch-types``: the batch-process registry (the batch-process API's field names)
and the start and stop of batch processes."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from api.schemas.common import UtcDateTime, WorkQueueStatusSchema


class BatchTypeRefSchema(Schema):
    code = fields.Str(metadata={"description": "The type's code (case-sensitive)"})
    name = fields.Str()


class BatchTypeInfoSchema(BatchTypeRefSchema):
    description = fields.Str()


class BatchProcessStatusSchema(Schema):
    """The last run's status; which fields appear depends on where the run is."""

    type = fields.Str(metadata={"description": "The type's code"})
    failure_reason = fields.Str(data_key="failureReason", metadata={
        "description": '"This batch process type has never run", or why the last run failed'})
    batch_id = fields.Str(data_key="batchId", metadata={"description": "The last run's batch"})
    batch_status = fields.Str(data_key="batchStatus")
    date_created = UtcDateTime(data_key="dateCreated")
    start_date = UtcDateTime(data_key="startDate",
                                 metadata={"description": "When its first page started"})
    date_completed = UtcDateTime(data_key="dateCompleted",
                                     metadata={"description": "Finished runs only"})
    ops_expected = fields.Int(data_key="opsExpected",
                              metadata={"description": "Running only: the run's items"})
    ops_completed = fields.Int(data_key="opsCompleted",
                               metadata={"description": "Items processed, failed ones included"})
    failed_ops = fields.Int(data_key="failedOps")
    progress = fields.Str(metadata={"description": 'Running only: "7 out of 20" pages'})
    server_id = fields.Str(data_key="serverId", metadata={
        "description": "A worker running it, else the one that ran its last page, else the "
                       "API's host"})


class BatchProcessSchema(Schema):
    """``GET /batch-types/{code}``: a type and its last run."""

    type = fields.Nested(BatchTypeRefSchema)
    distributed = fields.Bool()
    status = fields.Nested(BatchProcessStatusSchema)
    work_queue_status = fields.Nested(WorkQueueStatusSchema, data_key="workQueueStatus")


class BatchProcessListItemSchema(BatchProcessSchema):
    """``GET /batch-types``: every type, with its description and last run."""

    type = fields.Nested(BatchTypeInfoSchema)
    cancellation_behaviour = fields.Str(data_key="cancellationBehaviour",
                                        metadata={"description": "CanCancel or CannotCancel"})


class ProcessStartSchema(Schema):
    """``POST /batch-types/{code}/start``; the body is optional."""

    class Meta:
        unknown = RAISE

    params = fields.Dict(load_default=dict,
                         metadata={"description": "The type's parameters, checked by its schema"})
    description = fields.Str(allow_none=True, validate=validate.Length(max=2000))


class ProcessStartedSchema(Schema):
    """The run a start created."""

    process_id = fields.Str(data_key="processId", required=True,
                            metadata={"description": "The run's batch id (GET /batches/{id})"})


class ProcessStoppedSchema(Schema):
    """What a stop did."""

    was_stopped = fields.Bool(data_key="wasStopped", required=True, metadata={
        "description": "True when a running run was told to drain; false when none ran"})
