"""The CRM BatchTask API: ``POST /api/v1/BatchTask`` starts a task, ``GET /api/v1/BatchTask/{id}``
reads it back; JSON or XML bodies and answers, chosen by Content-Type and Accept.

A task is a batch: ``Name`` is its batch type, ``ParameterObject`` its params
(its ``Items`` list, if any, its items; else a type with a source finds its
own, and any other type gets the ParameterObject as its one item). The task's
int32 ``Id`` is the batch's integer alias (its ``number``). Fields batchq only
keeps (Context, Request, DetailsTable, ...) are stored as sent. See
docs/vendor-apis/crm-batch-task.md.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, request
from marshmallow import ValidationError
from werkzeug.datastructures import MIMEAccept
from werkzeug.exceptions import NotAcceptable, UnsupportedMediaType

from api.context import current_caller, runtime
from api.errors import TOO_MANY_ACTIVE, register_error_format
from api.schemas.crm_batch_task import BatchTaskInfoInSchema, BatchTaskInfoSchema, CrmErrorSchema
from api.vendor_blueprint import NO_CREDENTIAL, VendorBlueprint, as_utc
from api.xml_bodies import parse_xml, to_xml
from batchq.domain.permissions import Caller, tenant_of_new_batch
from batchq.domain.progress import progress_description, progress_percent
from batchq.domain.statuses import BatchStatus
from batchq.errors import InvalidBatch, InvalidRequest
from batchq.service import control, listing
from batchq.service.control import BatchDetails
from batchq.service.creation import NewBatch, create_batch, create_source_batch

PREFIX = "/api/v1"
JSON_TYPES = ("application/json", "text/json", "application/json-patch+json",
              "application/merge-patch+json")
XML_TYPES = ("application/xml", "text/xml")
FORM = "application/x-www-form-urlencoded"
#: The BatchTaskInfo fields batchq keeps as sent, by their names in the API.
KEPT_FIELDS = {"details_table": "DetailsTable", "details_record": "DetailsRecord",
               "is_system_task": "IsSystemTask", "is_internal_task": "IsInternalTask",
               "database_serial_number": "DatabaseSerialNumber", "context": "Context",
               "request": "Request"}
#: BatchTaskState by batchq status; a suspended, unfinished task is Idle.
STATES = {BatchStatus.WAITING: "Starting", BatchStatus.PROCESSING: "Started",
          BatchStatus.COMPLETED: "Finished", BatchStatus.COMPLETED_WITH_ERRORS: "Finished",
          BatchStatus.CANCELLING: "Cancelling", BatchStatus.CANCELLED: "Cancelled",
          BatchStatus.POST_BATCH_FAILED: "Failed", BatchStatus.TOO_MANY_FAILED: "Failed",
          BatchStatus.FAILED: "Failed"}
ERROR_TYPES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
               405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict",
               413: "RequestEntityTooLarge", 415: "UnsupportedMediaType",
               429: "TooManyRequests", 503: "ServiceUnavailable"}

blp = VendorBlueprint("crm-batchtask-api", __name__, url_prefix=PREFIX,
                      error_schema=CrmErrorSchema,
                      description="The CRM BatchTask API (docs/vendor-apis/crm-batch-task.md)")


# -- negotiation -------------------------------------------------------------------------


def answer_type(fallback: bool = False) -> str:
    """The media type of the answer, from Accept (none: JSON); ``NotAcceptable`` for one we
    cannot write, unless ``fallback`` (an error answer is JSON then)."""
    if not request.headers.get("Accept"):
        return JSON_TYPES[0]
    # "application/json; charset=utf-8" (the document's sample) accepts application/json.
    accepted = MIMEAccept([(value.partition(";")[0].strip(), quality)
                           for value, quality in request.accept_mimetypes])
    best = accepted.best_match([*JSON_TYPES, *XML_TYPES])
    if best is None:
        if fallback:
            return JSON_TYPES[0]
        raise NotAcceptable(f"Accept one of: {', '.join([*JSON_TYPES, *XML_TYPES])}")
    return str(best)


def answer(value: Any, root: str, status: int = 200, fallback: bool = False) -> Response:
    """``value`` as JSON or as XML under ``root``, as the caller accepts."""
    media = answer_type(fallback)
    body = to_xml(root, value) if media in XML_TYPES else json.dumps(value).encode()
    return Response(body, status, content_type=f"{media}; charset=utf-8")


def crm_error(status: int, message: str, details: dict[str, Any]) -> Any:
    """``{"Error", "ErrorType"}``, as JSON or XML (<Error>) as the caller accepts."""
    body = {"Error": message, "ErrorType": ERROR_TYPES.get(status, "InternalServerError")}
    return answer(body, "Error", status, fallback=True)


def register(app: Flask) -> None:
    """Answer errors under ``/api/v1`` in the CRM API's shape."""
    register_error_format(app, PREFIX, crm_error)


# -- reading the request -------------------------------------------------------------------


def read_task_info() -> dict[str, Any]:
    """The BatchTaskInfo of the body, in whichever media type Content-Type names."""
    media = request.mimetype
    if media in JSON_TYPES:
        try:
            data = current_app.json.loads(request.get_data())
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise InvalidRequest(f"Invalid JSON body: {exc}") from None
    elif media in XML_TYPES:
        data = parse_xml(request.get_data(), "BatchTaskInfo", lists=("Items",))
    elif media == FORM:
        data = _form_fields(request.form)
    else:
        raise UnsupportedMediaType(f"Send BatchTaskInfo as one of: "
                                   f"{', '.join([*JSON_TYPES, *XML_TYPES, FORM])}")
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a BatchTaskInfo object")
    try:
        loaded: dict[str, Any] = BatchTaskInfoInSchema().load(data)
    except ValidationError as exc:
        raise InvalidRequest("The BatchTaskInfo is not valid: " + "; ".join(
            f"{name}: {problems}" for name, problems in _messages(exc).items()),
            {"fields": _messages(exc)}) from None
    return loaded


def _messages(exc: ValidationError) -> dict[str, Any]:
    return exc.messages if isinstance(exc.messages, dict) else {"body": exc.messages}


def _form_fields(form: Mapping[str, str]) -> dict[str, Any]:
    """A form's fields; its ParameterObject is JSON text."""
    fields_: dict[str, Any] = dict(form)
    if "ParameterObject" in fields_:
        try:
            fields_["ParameterObject"] = json.loads(fields_["ParameterObject"])
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            raise InvalidRequest("ParameterObject must be JSON text in a form body") from None
    return fields_


# -- the task ---------------------------------------------------------------------------------


def start_task(info: dict[str, Any], caller: Caller) -> int:
    """Create the batch the task describes; returns its number (the task's Id)."""
    rt = runtime()
    parameters = dict(info.get("parameter_object") or {})
    items = parameters.pop("Items", None)
    if items is not None and not isinstance(items, list):
        raise InvalidBatch("ParameterObject.Items must be a list of items", {"field": "Items"})
    system_task = bool(info.get("is_system_task"))
    kept = {name: info.get(key) for key, name in KEPT_FIELDS.items()}
    new = NewBatch(type=info["name"], params=parameters, description=info.get("description"),
                   tenant_id=tenant_of_new_batch(caller, None, named=system_task),
                   creator=caller, task_info=kept)
    finds_its_own = info["name"] in rt.registry and rt.registry.get(info["name"]).source
    if items is None and finds_its_own:
        batch = create_source_batch(rt, new)
    else:
        one_item = [{"key": "0", "payload": parameters}]  # the whole ParameterObject
        batch = create_batch(rt, new, one_item if items is None else items)
    return int(control.get_batch(rt, batch["id"])["number"])


def associate_id(batch: Mapping[str, Any]) -> int:
    """The task's owner as a number: 0 for a system task; else a stable number of the user
    (batchq's users have names, not numbers)."""
    info = batch["task_info"] or {}
    creator = batch["create_user_id"]
    if info.get("IsSystemTask") or creator is None:
        return 0
    return zlib.crc32(str(creator).encode()) & 0x7FFFFFFF or 1


def _time(value: Any) -> str | None:
    shown = as_utc(value)
    return None if shown is None else shown.isoformat()


def task_view(details: BatchDetails) -> dict[str, Any]:
    """BatchTaskInfo of a batch: every field, null (or 0, false) when unset."""
    batch, info = details.batch, details.batch["task_info"] or {}
    state = "Idle" if batch["suspended"] and batch["status"] in (
        BatchStatus.WAITING, BatchStatus.PROCESSING) else STATES[BatchStatus(batch["status"])]
    return {
        "Id": batch["number"], "Name": batch["type"], "AssociateId": associate_id(batch),
        "DetailsTable": info.get("DetailsTable") or 0,
        "DetailsRecord": info.get("DetailsRecord") or 0,
        "IsSystemTask": bool(info.get("IsSystemTask")),
        "IsInternalTask": bool(info.get("IsInternalTask")),
        "ParameterObject": batch["params"], "LastStarted": _time(batch["started_at"]),
        "Created": _time(batch["created_at"]),
        "StartCount": 0 if batch["started_at"] is None else 1,
        "DatabaseSerialNumber": info.get("DatabaseSerialNumber"), "Context": info.get("Context"),
        "Result": None if batch["result"] is None else json.dumps(batch["result"]),
        "State": state, "Description": batch["description"],
        "Response": batch["failure_reason"], "Request": info.get("Request"),
        "ProgressDescription": progress_description(batch),
        "ProgressPercent": int(progress_percent(batch["processed_items"],
                                                batch["total_items"])),
        "FileName": None if details.result_file is None else details.result_file.filename,
        "CancellationBehaviour": details.cancellation_behaviour,
    }


# -- the views ---------------------------------------------------------------------------------

_DOCUMENTED = [*JSON_TYPES[:2], *XML_TYPES]
_INT32 = {"type": "integer", "format": "int32", "xml": {"name": "int"}}


def _errors(answers: Mapping[int, str]) -> Any:
    """Document error answers in every media type an error may be written in."""
    return blp.doc(responses={str(status): {
        "description": text,
        "content": {media: {"schema": CrmErrorSchema} for media in _DOCUMENTED},
        **({"headers": TOO_MANY_ACTIVE["headers"]} if status == 429 else {})}
        for status, text in answers.items()})


@blp.route("/BatchTask", methods=["POST"])
@blp.doc(requestBody={"required": True, "content": {
    **{media: {"schema": BatchTaskInfoInSchema} for media in _DOCUMENTED},
    FORM: {"schema": {"type": "object", "additionalProperties": {"type": "string"}}}}},
    responses={"200": {"description": "The task's Id (int32)",
                       "content": {media: {"schema": _INT32} for media in _DOCUMENTED}}})
@_errors({400: "A BatchTaskInfo that cannot be read, an unknown Name, or refused items",
          401: NO_CREDENTIAL, 403: "You may not create a system task (it has no tenant)",
          406: "An Accept other than JSON or XML",
          413: "A body over BATCHQ_MAX_BODY_MB or more items than BATCHQ_MAX_ITEMS",
          415: "A Content-Type other than JSON, XML or a form",
          429: TOO_MANY_ACTIVE["description"]})
def post_batch_task() -> Response:
    """Start a batch job based on BatchTaskInfo; answers its int32 Id"""
    answer_type()  # a 406 before anything is created
    return answer(start_task(read_task_info(), current_caller()), "int")


@blp.route("/BatchTask/<int:task_id>")
@blp.doc(responses={"200": {"description": "The task", "content": {
    media: {"schema": BatchTaskInfoSchema} for media in _DOCUMENTED}}})
@_errors({401: NO_CREDENTIAL, 404: "No task with that Id you may read",
          406: "An Accept other than JSON or XML"})
def get_batch_task(task_id: int) -> Response:
    """Read a task back by its Id"""
    answer_type()
    rt = runtime()
    batch = listing.check_access_by_number(rt, current_caller(), task_id)
    return answer(task_view(control.batch_details(rt, batch["id"], batch)), "BatchTaskInfo")
