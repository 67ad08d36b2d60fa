"""``/healthz``: is the database reachable?"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from api.blueprint import Blueprint
from api.context import runtime
from batchq.errors import StorageUnavailable

blp = Blueprint("health", __name__, description="Liveness")


class HealthSchema(Schema):
    """What ``/healthz`` reports."""

    status = fields.Str(required=True, metadata={"description": '"ok" or "unavailable"'})
    database = fields.Str(required=True, metadata={"description": '"ok", or the error'})


@blp.route("/healthz")
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema, description="The database is unreachable")
@blp.doc(security=[])  # open: no credential needed
def healthz() -> Any:
    """Report whether the API can reach its database"""
    try:
        runtime().storage.ping()
    except StorageUnavailable as exc:
        return {"status": "unavailable", "database": exc.message}, 503
    return {"status": "ok", "database": "ok"}
