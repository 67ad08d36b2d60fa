"""``/metrics``: Prometheus gauges of batches, items, jobs and workers.

Open unless ``BATCHQ_METRICS_TOKEN`` is set; then only ``Authorization: Bearer
<that token>`` reads it (a scraper's credential, not a user's), so the gauges
can stay off the public internet without a second port (docs/authorization.md).
"""

from __future__ import annotations

import hmac

from flask import Response, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from api.blueprint import Blueprint
from api.context import runtime
from api.errors import error_body
from batchq.adapters.prometheus import BatchqCollector

blp = Blueprint("metrics", __name__, description="Monitoring")


@blp.route("/metrics")
@blp.response(200, content_type=CONTENT_TYPE_LATEST,
              description="The Prometheus text exposition format")
# Aggregates only (no batch, tenant or user names); BATCHQ_METRICS_TOKEN closes it.
@blp.doc(security=[])
@blp.alt_response(401, description="BATCHQ_METRICS_TOKEN is set and the request lacks it")
def metrics() -> Response:
    """Gauges for Prometheus: batches by status, active items, jobs in flight, busy workers"""
    expected = runtime().settings.metrics_token
    if expected and not _bearer_matches(request.headers.get("Authorization", ""), expected):
        response = error_body(401, "GET /metrics needs 'Authorization: Bearer "
                                   "<BATCHQ_METRICS_TOKEN>'")
        response.headers["WWW-Authenticate"] = 'Bearer realm="batchq-metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BatchqCollector(runtime().storage.metrics.totals))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def _bearer_matches(header: str, expected: str) -> bool:
    scheme, _, credential = header.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(credential.strip().encode(),
                                                              expected.encode())
