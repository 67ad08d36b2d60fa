"""``GET /metrics``: Prometheus gauges read from the database, open like /healthz."""

from __future__ import annotations

from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from api import create_app
from batchq.runtime import Runtime

from .support import (
    MakeRuntime,
    create,
    deliver_seed,
    failing_items,
    ok_items,
    run_to_end,
    start_slow_page,
)


def scrape(app: Flask) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of one scrape by (name, labels), without sending a credential."""
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_an_empty_installation_reports_zeros(make_runtime: MakeRuntime) -> None:
    samples = scrape(create_app(runtime=make_runtime()))
    assert samples[("batchq_batches", (("status", "Completed"),))] == 0
    assert samples[("batchq_active_batches", ())] == 0
    assert samples[("batchq_jobs", (("state", "running"),))] == 0
    assert samples[("batchq_busy_workers", ())] == 0


def test_metrics_count_finished_and_active_batches_their_items_and_running_jobs(
    make_runtime: MakeRuntime,
) -> None:
    rt: Runtime = make_runtime(page_size=2)
    done = create(rt, "echo", ok_items(9) + failing_items(1))
    run_to_end(rt, done)
    active = create(rt, "echo", ok_items(5))
    suspended = create(rt, "echo", ok_items(2))
    rt.storage.batches.set_suspended(suspended, True)
    deliver_seed(rt)
    start_slow_page(rt, active, 0, worker="node-7")

    samples = scrape(create_app(runtime=rt))

    assert samples[("batchq_batches", (("status", "CompletedWithErrors"),))] == 1
    assert samples[("batchq_batches", (("status", "Waiting"),))] + samples[
        ("batchq_batches", (("status", "Processing"),))] == 2
    assert samples[("batchq_active_batches", ())] == 2
    assert samples[("batchq_suspended_batches", ())] == 1
    assert samples[("batchq_active_batch_items", (("state", "total"),))] == 7
    assert samples[("batchq_active_batch_items", (("state", "processed"),))] == 0
    assert samples[("batchq_jobs", (("state", "running"),))] == 1
    assert samples[("batchq_busy_workers", ())] == 1
