"""``/healthz``: is the database reachable?"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import current_app
from marshmallow import Schema, fields

from api.blueprint import Blueprint

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
    engine = current_app.extensions["batchq"].store.engine
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        return {"status": "unavailable", "database": str(exc).splitlines()[0]}, 503
    return {"status": "ok", "database": "ok"}
