"""The console's Flask blueprint, its security headers, and its HTML error pages."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, render_template
from werkzeug.exceptions import HTTPException

from api.errors import status_code_of
from batchq.errors import BatchqError

log = logging.getLogger(__name__)

bp = Blueprint("console", __name__, static_folder="static", static_url_path="/console/static",
               template_folder="templates")

#: Only the console's own scripts, styles and images; no inline script, no eval, no frames.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    if response.mimetype == "text/html" or response.mimetype == "text/csv":
        # Pages show tenants' data: no shared or back-button cache keeps them.
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(BatchqError)
def _domain_error(error: BatchqError) -> tuple[str, int]:
    status = status_code_of(error)
    return render_template("console/problem.html", status=status, message=error.message), status


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> tuple[str, int]:
    status = error.code or 500
    message = error.description or error.name
    return render_template("console/problem.html", status=status, message=message), status


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> tuple[str, int]:
    log.exception("Unexpected error in the console")
    return render_template("console/problem.html", status=500,
                           message="Internal error; the server log has the details"), 500
