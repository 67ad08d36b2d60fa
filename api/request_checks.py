"""Checks of every request that no view should have to repeat."""

from __future__ import annotations

from flask import Flask, Response, request
from flask.typing import ResponseReturnValue

from api.errors import error_body


def register_request_checks(app: Flask) -> None:
    """Register the checks; call after ``register_authentication`` (a 401 comes first)."""

    @app.after_request
    def _no_sniffing(response: Response) -> Response:
        # A download (a result file, an export) or an error is read as the type it is
        # sent as, never sniffed into HTML a browser would run.
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.before_request
    def _refuse_nul_in_path() -> ResponseReturnValue | None:
        # "%00" in a path decodes to U+0000, which no id or code holds and PostgreSQL
        # refuses in a query (a 500): there is no such resource.
        for name, value in (request.view_args or {}).items():
            if isinstance(value, str) and "\x00" in value:
                return error_body(404, f"No such resource: the {name} in the path holds the "
                                       "character U+0000 (%00)", {"field": name})
        return None

    @app.before_request
    def _refuse_a_patch_that_is_not_json() -> ResponseReturnValue | None:
        # Every PATCH takes a JSON object; read as no fields, another body would
        # answer "Nothing to change", which hides the client's real mistake.
        if request.method != "PATCH" or request.routing_exception is not None:
            return None
        if request.is_json:
            return None
        return error_body(415, "A PATCH takes a JSON body: send it with Content-Type "
                               f"application/json, not {request.mimetype or 'none'!r}",
                          {"contentType": request.mimetype})
