"""flask-smorest's Blueprint, answering bad input with 400 rather than webargs' 422.

Request bodies are parsed with the app's JSON provider, which refuses the
non-standard tokens NaN, Infinity and -Infinity that Python's ``json`` accepts:
PostgreSQL's json type cannot store them, so they must not reach the engine.
"""

from __future__ import annotations

import json
from typing import Any

import flask_smorest
from flask import Request, current_app
from flask.json.provider import DefaultJSONProvider
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request

from api.errors import ErrorSchema


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, minus NaN and Infinity on input; keys dumped in their order."""

    sort_keys = False  # keep itemErrors in input order

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        kwargs.setdefault("parse_constant", _refuse_constant)
        return json.loads(s, **kwargs)


class _Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400

    def load_querystring(self, req: Request, schema: Any) -> Any:
        # "%00" decodes to U+0000, which no PostgreSQL text holds: refuse it, or the
        # query built from it fails in the driver (a 500).
        with_nul = sorted({name for name, value in req.args.items(multi=True)
                           if "\x00" in name or "\x00" in value})
        if with_nul:
            abort(400, messages={"query": {
                name: ["must not contain the character U+0000 (%00)"] for name in with_nul}})
        return super().load_querystring(req, schema)

    def _raw_load_json(self, req: Request) -> Any:
        if not is_json_request(req):
            return core.missing
        try:
            return current_app.json.loads(req.get_data(cache=True))
        # JSONDecodeError, UnicodeDecodeError, NaN or Infinity; RecursionError: nested too deep
        except (ValueError, RecursionError) as exc:
            abort(400, exc=exc, messages={"json": [f"Invalid JSON body: {exc}"]})


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint, documenting batchq's error answers by default.

    An error response (4xx, 5xx) documented without a schema gets the one error
    shape, and a view that reads a JSON body documents the 413 of a body over
    ``BATCHQ_MAX_BODY_MB``; so a client (and schemathesis) can rely on the document.
    """

    ARGUMENTS_PARSER = _Parser()

    def alt_response(self, status_code: Any, response: Any = None, **options: Any) -> Any:
        if response is None and options.get("schema") is None and int(status_code) >= 400:
            options["schema"] = ErrorSchema
        return super().alt_response(status_code, response, **options)

    def arguments(self, schema: Any, **options: Any) -> Any:
        parse = super().arguments(schema, **options)
        if options.get("location", "json") != "json":
            return parse
        too_large = self.alt_response(
            413, description="The body is larger than BATCHQ_MAX_BODY_MB, or has too many items")
        return lambda view: too_large(parse(view))
