"""Every error answer: the status code, headers and JSON body of each domain error.

One JSON shape for every error, batchq's own and the HTTP layer's:
``{"status", "error", "details"}``. ``STATUS_CODES`` is the one place where a
domain error (``batchq.errors``) meets HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, has_request_context, jsonify, request
from flask.typing import ResponseReturnValue
from flask_smorest import Api
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

from batchq import errors

#: The status of each domain error; a subclass takes its nearest listed ancestor's.
STATUS_CODES: dict[type[errors.BatchqError], int] = {
    errors.InvalidRequest: 400,
    errors.TooManyItems: 413,
    errors.UploadTooLarge: 413,
    errors.IdempotencyKeyReused: 422,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.UniqueViolation: 409,
    errors.QuotaExceeded: 429,
    errors.StorageUnavailable: 503,
}
#: How long a caller of a briefly unavailable database should wait.
UNAVAILABLE_RETRY_AFTER_SECONDS = 5

log = logging.getLogger(__name__)


class ErrorSchema(Schema):
    """The body of every error response."""

    status = fields.Int(required=True, metadata={"description": "The HTTP status code"})
    error = fields.Str(required=True, metadata={"description": "What went wrong, for a person"})
    details = fields.Dict(metadata={"description": "Machine-readable specifics"})


#: A vendor API's error answer: (status, message, details) -> the response in its own shape.
ErrorFormat = Callable[[int, str, dict[str, Any]], Any]
_FORMATS = "batchq.error_formats"


def register_error_format(app: Flask, path_prefix: str, error_format: ErrorFormat) -> None:
    """Answer every error of a request under ``path_prefix`` with ``error_format``.

    So a vendor API mounted there (``api/vendor_apis.py``) answers a 401, a 404 of
    an unknown path, a 405 or a domain error in that vendor's shape, whichever
    layer refused the request.
    """
    app.extensions.setdefault(_FORMATS, []).append((path_prefix.rstrip("/"), error_format))


def _vendor_format() -> ErrorFormat | None:
    if not has_request_context():
        return None
    for prefix, error_format in current_app.extensions.get(_FORMATS, ()):
        if request.path == prefix or request.path.startswith(prefix + "/"):
            return error_format
    return None


def error_body(status: int, message: str, details: dict[str, Any] | None = None) -> Any:
    """The error answer: batchq's shape, or that of the vendor API the request was sent to."""
    vendor = _vendor_format()
    if vendor is not None:
        return vendor(status, message, details or {})
    response = jsonify({"status": status, "error": message, "details": details or {}})
    response.status_code = status
    return response


#: How a view that creates batches documents its 429: ``blp.alt_response(429, **TOO_MANY_ACTIVE)``.
TOO_MANY_ACTIVE: dict[str, Any] = {
    "description": "You already have the configured maximum of active batches "
                   "(BATCHQ_MAX_ACTIVE_BATCHES_PER_USER)",
    "headers": {"Retry-After": {"description": "Seconds to wait before retrying",
                                "schema": {"type": "integer"}}},
}


class BatchqApi(Api):
    """flask-smorest's Api with batchq's error shape."""

    ERROR_SCHEMA = ErrorSchema
    # No catch-all "default" response: every status an endpoint answers is documented.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def handle_http_exception(self, error: HTTPException) -> ResponseReturnValue:
        data = getattr(error, "data", None) or {}
        details: dict[str, Any] = {}
        message = error.description or error.name
        if "messages" in data:
            details["fields"] = _flatten_locations(data["messages"])
            message = "The request is not valid: " + _summary(details["fields"])
        elif "message" in data:
            message = data["message"]
        status = error.code or 500
        response = error_body(status, message, details)
        # The exception's own headers too, e.g. the Allow of a 405.
        for name, value in [*error.get_headers(), *(data.get("headers") or {}).items()]:
            if name.lower() != "content-type":
                response.headers[name] = value
        return response


def status_code_of(error: errors.BatchqError) -> int:
    """The HTTP status of ``error``: its class's, or its nearest ancestor's in ``STATUS_CODES``."""
    for cls in type(error).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 500


def headers_of(error: errors.BatchqError) -> dict[str, str]:
    """The headers an answer to ``error`` carries: when to retry, for refusals that pass."""
    if isinstance(error, errors.QuotaExceeded):
        return {"Retry-After": str(error.retry_after_seconds)}
    if isinstance(error, errors.StorageUnavailable):
        return {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)}
    return {}


def domain_error_response(error: errors.BatchqError) -> Any:
    """The answer to a domain error: its status, headers and the one error body."""
    response = error_body(status_code_of(error), error.message, error.details)
    response.headers.update(headers_of(error))
    return response


def register_error_handlers(app: Flask) -> None:
    """Map batchq's errors and surprises to the one error shape."""

    @app.errorhandler(errors.BatchqError)
    def _batchq_error(error: errors.BatchqError) -> ResponseReturnValue:
        log.info("Refused request: %s", error.message)
        return domain_error_response(error)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> ResponseReturnValue:
        # HTTPExceptions never get here: Flask picks the more specific handler of the Api.
        log.exception("Unexpected error")
        return error_body(500, "Internal error; the server log has the details")


def _flatten_locations(messages: dict[str, Any]) -> dict[str, Any]:
    """webargs nests errors by location ("json", "query"); the caller needs the fields."""
    flat: dict[str, Any] = {}
    for location_errors in messages.values():
        if isinstance(location_errors, dict):
            flat.update(location_errors)
    return flat or messages


def _summary(fields_: dict[str, Any]) -> str:
    parts = []
    for name, problems in list(fields_.items())[:5]:
        text = problems[0] if isinstance(problems, list) and problems else problems
        parts.append(f"{name}: {text}")
    return "; ".join(parts)
