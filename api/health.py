"""``/healthz``: is the database reachable? Up or down, and nothing more.

The answer is public, so it names no host, driver or error: those go to the log
(docs/authorization.md).
"""

from __future__ import annotations

import logging
from typing import Any

from marshmallow import Schema, fields

from api.blueprint import Blueprint
from api.context import runtime
from batchq.errors import StorageUnavailable

log = logging.getLogger(__name__)
blp = Blueprint("health", __name__, description="Liveness")


class HealthSchema(Schema):
    """What ``/healthz`` reports."""

    status = fields.Str(required=True, metadata={"description": '"ok" or "unavailable"'})
    database = fields.Str(required=True,
                          metadata={"description": '"ok" or "unavailable" (the log says why)'})


@blp.route("/healthz")
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema, description="The database is unreachable")
@blp.doc(security=[])  # open: no credential needed
def healthz() -> Any:
    """Report whether the API can reach its database"""
    try:
        runtime().storage.ping()
    except StorageUnavailable as exc:
        log.warning("Health check: the database is unreachable: %s", exc.message)
        return {"status": "unavailable", "database": "unavailable"}, 503
    return {"status": "ok", "database": "ok"}
