"""``POST /batches``'s three bodies: a JSON object, or the items streamed as NDJSON or CSV.

A JSON body is read whole (so it is limited by ``BATCHQ_MAX_BODY_MB``); NDJSON
and CSV bodies are the items alone, read line by line while they are inserted,
with the batch's options in the query string. Those are limited by
``BATCHQ_MAX_LINE_KB`` a line, ``BATCHQ_MAX_UPLOAD_MB`` in all and
``BATCHQ_MAX_ITEMS`` instead.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from flask import Response, after_this_request, current_app, request
from flask_smorest import abort
from marshmallow import RAISE
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import RequestEntityTooLarge

from api.context import runtime
from api.schemas.batches import BatchCreateSchema
from api.schemas.uploads import UploadQueryDocSchema, UploadQuerySchema
from batchq.service.upload_formats import (
    Readable,
    Upload,
    UploadLimits,
    csv_items,
    ndjson_items,
)

#: The header an NDJSON or CSV upload sends its type's write-only params in.
SECRET_PARAMS_HEADER = "Batchq-Secret-Params"
JSON = "application/json"
NDJSON = "application/x-ndjson"
CSV = "text/csv"
#: Media type -> the reader of its items; application/ndjson is NDJSON's other name.
STREAMED: dict[str, Callable[[Readable, UploadLimits], Upload]] = {
    NDJSON: ndjson_items, "application/ndjson": ndjson_items, CSV: csv_items,
}
#: After a refused upload, how much of its unread rest is read and discarded, so
#: the client sees the error rather than a connection reset.
DRAIN_LIMIT_BYTES = 1024 * 1024 * 1024
_DRAIN_BLOCK = 64 * 1024


REQUEST_BODY = {
    "required": True,
    "description": (
        "A JSON object with the items and options; or the items alone, streamed as NDJSON "
        "(one item per line) or CSV (a header row; columns key and stage are the item's, every "
        "other column goes into its payload as text), with the options in the query string. "
        "A JSON body is limited to BATCHQ_MAX_BODY_MB; NDJSON and CSV to BATCHQ_MAX_LINE_KB a "
        "line, BATCHQ_MAX_UPLOAD_MB in all and BATCHQ_MAX_ITEMS items."
    ),
    "content": {
        JSON: {"schema": BatchCreateSchema},
        NDJSON: {"schema": {"type": "string", "format": "binary"},
                 "example": '{"key": "a", "payload": {"n": 1}}\n{"n": 2}\n'},
        CSV: {"schema": {"type": "string", "format": "binary"},
              "example": "key,stage,email\nc-1,0,ann@example.com\n"},
    },
}
QUERY_PARAMETERS = [
    {"in": "query", "schema": UploadQueryDocSchema},
    {"in": "header", "name": SECRET_PARAMS_HEADER, "required": False,
     "schema": {"type": "string"},
     "description": "NDJSON and CSV uploads: the type's write-only params (the http type's "
                    "secret_headers) as the JSON text of an object, merged into params; "
                    "refused in the query string, which access logs record"}]


def read_create_request(parser: FlaskParser) -> dict[str, Any]:
    """The create request's options and ``items`` (a list, or an iterator over the stream)."""
    media_type = request.mimetype
    if media_type == JSON or (media_type.startswith("application/")
                              and media_type.endswith("+json")):
        return _json_body(parser)
    # Bounded by the upload's own caps instead. (None would mean "the app's MAX_CONTENT_LENGTH".)
    request.max_content_length = sys.maxsize
    after_this_request(_drain_unread_body)  # whatever refuses the upload from here on
    reader = STREAMED.get(media_type)
    if reader is None:
        _abort(415, f"POST /batches takes a body of Content-Type {JSON}, {NDJSON} or {CSV}, "
               f"not {media_type or 'none'!r}")
    options: dict[str, Any] = parser.parse(UploadQuerySchema(), request, location="query",
                                           unknown=RAISE)
    limits = UploadLimits.from_settings(runtime().settings)
    secret = _secret_params_header()
    return {**options, "params": {**options["params"], **secret},
            "url_params": frozenset(options["params"]), "items": reader(request.stream, limits)}


def _secret_params_header() -> dict[str, Any]:
    """The upload's write-only params, from ``SECRET_PARAMS_HEADER`` (JSON text of an object).

    Not in the query string: a URL is written to access logs, a header is not.
    """
    text = request.headers.get(SECRET_PARAMS_HEADER)
    if text is None:
        return {}
    try:
        loaded = current_app.json.loads(text)
    except (ValueError, RecursionError) as exc:
        _abort(400, f"{SECRET_PARAMS_HEADER} must be the JSON text of an object: {exc}")
    if not isinstance(loaded, dict):
        _abort(400, f'{SECRET_PARAMS_HEADER} must be the JSON text of an object, e.g. '
               '{"secret_headers": {"Authorization": "Bearer ..."}}')
    return loaded


def _json_body(parser: FlaskParser) -> dict[str, Any]:
    try:
        body: dict[str, Any] = parser.parse(BatchCreateSchema(), request, location="json")
    except RequestEntityTooLarge:
        limit = request.max_content_length or 0
        _abort(413, f"The JSON body is larger than {limit // (1024 * 1024)} MB "
               f"(BATCHQ_MAX_BODY_MB); post large batches as {NDJSON} or {CSV}, which are "
               "streamed")
    return body


def _abort(status: int, message: str) -> NoReturn:
    abort(status, message=message)
    raise AssertionError("unreachable: abort raises")  # flask-smorest's abort is not NoReturn


def _drain_unread_body(response: Response) -> Response:
    """Read what is left of a refused upload, so the client can read the error response.

    A server that closes a connection with unread data in it resets it, and most
    clients then report the reset, not the 400 or 413 sent before it. After a
    successful upload nothing is left to read.
    """
    drained = 0
    with contextlib.suppress(Exception):  # a client gone, a broken stream: nothing to save
        stream = request.stream
        while drained < DRAIN_LIMIT_BYTES and (block := stream.read(_DRAIN_BLOCK)):
            drained += len(block)
    return response

