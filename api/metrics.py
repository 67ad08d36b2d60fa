"""``/metrics``: Prometheus gauges of batches, items, jobs and workers."""

from __future__ import annotations

from flask import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from api.blueprint import Blueprint
from api.context import runtime
from batchq.adapters.prometheus import BatchqCollector

blp = Blueprint("metrics", __name__, description="Monitoring")


@blp.route("/metrics")
@blp.response(200, content_type=CONTENT_TYPE_LATEST,
              description="The Prometheus text exposition format")
@blp.doc(security=[])  # open like /healthz: aggregates only, no batch, tenant or user names
def metrics() -> Response:
    """Gauges for Prometheus: batches by status, active items, jobs in flight, busy workers"""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BatchqCollector(runtime().storage.metrics.totals))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
