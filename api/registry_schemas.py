"""Marshmallow schemas of the batch-process registry (seed 001's field names)."""

from __future__ import annotations

from marshmallow import Schema, fields

from api.schemas import UtcDateTime, WorkQueueStatusSchema


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
